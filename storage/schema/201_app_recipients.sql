-- Applications address recipients by (organisation, employee ID), official email or phone.
CREATE INDEX organisation_members_employee ON organisation_members (org_id, employee_id);
CREATE INDEX organisation_members_email ON organisation_members (email);
CREATE INDEX organisation_members_phone ON organisation_members (phone);
