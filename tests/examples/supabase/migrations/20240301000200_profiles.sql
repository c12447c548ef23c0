create table public.profiles (
  id uuid not null references auth.users on delete cascade,
  username extensions.citext unique,
  full_name text,
  avatar_url text,
  website text,
  role public.user_role not null default 'member',
  updated_at timestamptz not null default now(),

  primary key (id),
  constraint username_length check (char_length(username) >= 3)
);

alter table public.profiles enable row level security;
