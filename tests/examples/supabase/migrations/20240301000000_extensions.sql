-- Supabase projects enable their extensions first, in the extensions schema
create extension if not exists citext with schema extensions;
create extension if not exists pg_trgm with schema extensions;
