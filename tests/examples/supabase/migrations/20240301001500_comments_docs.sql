comment on table public.profiles is 'One row per user; created by the on_auth_user_created trigger.';
comment on column public.posts.slug is 'URL part; unique among posts that have one';
comment on function public.get_feed(integer, bigint) is 'Newest published posts first';
