create or replace function public.get_feed(max_rows integer default 20, after_id bigint default null)
returns setof public.posts
language sql
stable
as $feed$
  select * from public.posts
  where status = 'published' and ($2 is null or id < $2)
  order by id desc
  limit $1;
$feed$;
