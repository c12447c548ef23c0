create sequence public.invoice_number_seq start with 1000;

create table public.invoices (
  id uuid primary key default gen_random_uuid(),
  number bigint not null default nextval('public.invoice_number_seq') unique,
  profile_id uuid not null references public.profiles (id),
  amount_cents integer not null check (amount_cents >= 0),
  created_at timestamptz not null default now()
);

alter sequence public.invoice_number_seq owned by public.invoices.number;
alter table public.invoices enable row level security;
create policy "Own invoices" on public.invoices for select to authenticated
  using (profile_id = (select auth.uid()));
