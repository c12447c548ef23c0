-- a data fix in a DO block
do $$
declare
  r record;
begin
  for r in select id from public.posts where published_at is null and status = 'published' loop
    update public.posts set published_at = created_at where id = r.id;
  end loop;
end
$$;
