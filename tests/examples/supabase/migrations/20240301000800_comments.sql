create table public.comments (
  id bigint generated always as identity primary key,
  post_id bigint not null references public.posts (id) on delete cascade,
  author_id uuid references public.profiles (id) on delete set null,
  body text not null,
  created_at timestamptz not null default now()
);
create index comments_post_id_idx on public.comments (post_id, created_at);

alter table public.comments enable row level security;
create policy "Comments are public" on public.comments for select using (true);
create policy "Signed-in users comment" on public.comments
  for insert to authenticated with check (author_id = (select auth.uid()));
