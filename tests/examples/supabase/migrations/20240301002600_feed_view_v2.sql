drop view if exists public.published_posts;
create view public.published_posts
with (security_invoker = true)
as
  select p.id, p.title, p.slug, p.author_id, p.published_at
  from public.posts p
  where p.status = 'published';
grant select on public.published_posts to anon, authenticated;

drop function if exists public.get_feed(integer, bigint);
