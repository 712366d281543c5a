-- The index databases of the three Caravan nodes (docker-compose.yml, service postgres).
-- Runs once, when the PostgreSQL data volume is new.
CREATE DATABASE caravan_kz_customs OWNER caravan;
CREATE DATABASE caravan_uz_customs OWNER caravan;
CREATE DATABASE caravan_kg_customs OWNER caravan;
