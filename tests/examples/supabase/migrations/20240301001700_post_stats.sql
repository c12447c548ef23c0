create materialized view public.post_stats as
  select author_id, count(*) as posts, max(created_at) as last_post_at
  from public.posts
  group by author_id;

create unique index post_stats_author_id_idx on public.post_stats (author_id);
