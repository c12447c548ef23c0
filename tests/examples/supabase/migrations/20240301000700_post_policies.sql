create policy "Published posts are public" on public.posts
  for select using (status = 'published');

create policy "Authors see their drafts" on public.posts
  for select to authenticated using (author_id = (select auth.uid()));

create policy "Authors write their posts" on public.posts
  for all to authenticated
  using (author_id = (select auth.uid()))
  with check (author_id = (select auth.uid()));
