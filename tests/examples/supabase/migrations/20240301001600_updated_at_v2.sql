-- the trigger function now also refuses to move updated_at backwards
create or replace function public.handle_updated_at()
returns trigger
language plpgsql
as $function$
begin
  new.updated_at = greatest(now(), old.updated_at);
  return new;
end;
$function$;
