grant usage on schema public to anon, authenticated;
grant select on public.posts to anon;
grant select, insert, update, delete on public.posts to authenticated;
grant select, insert on public.comments to authenticated;
