create type public.user_role as enum ('member', 'moderator', 'admin');
create type public.post_status as enum ('draft', 'published');
