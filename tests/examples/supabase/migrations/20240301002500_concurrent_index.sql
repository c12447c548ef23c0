create index concurrently if not exists posts_created_at_idx on public.posts (created_at desc);
