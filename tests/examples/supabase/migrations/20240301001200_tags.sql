create table public.tags (
  id serial primary key,
  name text not null unique
);

create table public.post_tags (
  post_id bigint not null references public.posts (id) on delete cascade,
  tag_id integer not null references public.tags (id) on delete cascade,
  primary key (post_id, tag_id)
);
