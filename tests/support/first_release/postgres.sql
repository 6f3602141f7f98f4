-- The schema of Longshore's first release (be077c2), made by its Store.upgrade() on PostgreSQL 15
-- and dumped with pg_dump --schema-only: what a store of that release looks like, for migration tests.
CREATE TABLE public.attempts (
    job_id character varying(64) NOT NULL,
    number integer NOT NULL,
    status character varying(16) NOT NULL,
    worker text,
    host text,
    container_id character varying(80),
    container_name text,
    exit_code integer,
    error text,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    reaped_at double precision,
    pull_seconds double precision,
    create_seconds double precision,
    start_seconds double precision,
    wait_seconds double precision,
    reap_seconds double precision,
    infra_retries integer NOT NULL,
    redeliveries integer NOT NULL
);
CREATE TABLE public.jobs (
    id character varying(64) NOT NULL,
    stack character varying(64) NOT NULL,
    image text NOT NULL,
    command json,
    env json NOT NULL,
    payload text NOT NULL,
    timeout_seconds double precision NOT NULL,
    memory_bytes bigint NOT NULL,
    cpus double precision NOT NULL,
    status character varying(16) NOT NULL,
    attempt integer NOT NULL,
    retries integer NOT NULL,
    retries_used integer NOT NULL,
    retry_delay_seconds double precision NOT NULL,
    published_at double precision,
    exit_code integer,
    error text,
    result text,
    output text,
    output_truncated boolean NOT NULL,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision
);
CREATE TABLE public.longshore_schema (
    version integer NOT NULL
);
CREATE TABLE public.workers (
    name character varying(255) NOT NULL,
    host text NOT NULL,
    stacks json NOT NULL,
    slots integer NOT NULL,
    started_at double precision NOT NULL,
    last_seen double precision NOT NULL,
    engine_down_from double precision,
    engine_down_until double precision
);
ALTER TABLE ONLY public.attempts
    ADD CONSTRAINT attempts_pkey PRIMARY KEY (job_id, number);
ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (name);
CREATE INDEX ix_jobs_stack ON public.jobs USING btree (stack);
CREATE INDEX ix_jobs_status ON public.jobs USING btree (status);
ALTER TABLE ONLY public.attempts
    ADD CONSTRAINT attempts_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id);
INSERT INTO public.longshore_schema (version) VALUES (1);
