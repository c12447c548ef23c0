-- seed data
insert into public.tags (name) values ('announcements'), ('engineering'), ('design');
