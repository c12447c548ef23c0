-- the public may only read published posts of profiles that still exist
drop policy if exists "Published posts are public" on public.posts;
create policy "Published posts are public" on public.posts
  for select using (status = 'published' and author_id is not null);
