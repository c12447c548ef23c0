alter table public.posts add column slug text;
update public.posts set slug = lower(regexp_replace(title, '[^a-zA-Z0-9]+', '-', 'g'));
create unique index posts_slug_key on public.posts (slug) where slug is not null;
