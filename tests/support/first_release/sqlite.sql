-- The schema of Longshore's first release (be077c2), made by its Store.upgrade() on SQLite
-- (sqlite_master), for migration tests.
CREATE TABLE jobs (
	id VARCHAR(64) NOT NULL, 
	stack VARCHAR(64) NOT NULL, 
	image TEXT NOT NULL, 
	command JSON, 
	env JSON NOT NULL, 
	payload TEXT NOT NULL, 
	timeout_seconds FLOAT NOT NULL, 
	memory_bytes BIGINT NOT NULL, 
	cpus FLOAT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempt INTEGER NOT NULL, 
	retries INTEGER NOT NULL, 
	retries_used INTEGER NOT NULL, 
	retry_delay_seconds FLOAT NOT NULL, 
	published_at FLOAT, 
	exit_code INTEGER, 
	error TEXT, 
	result TEXT, 
	output TEXT, 
	output_truncated BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	finished_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_jobs_stack ON jobs (stack);
CREATE INDEX ix_jobs_status ON jobs (status);
CREATE TABLE workers (
	name VARCHAR(255) NOT NULL, 
	host TEXT NOT NULL, 
	stacks JSON NOT NULL, 
	slots INTEGER NOT NULL, 
	started_at FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	engine_down_from FLOAT, 
	engine_down_until FLOAT, 
	PRIMARY KEY (name)
);
CREATE TABLE longshore_schema (
	version INTEGER NOT NULL
);
CREATE TABLE attempts (
	job_id VARCHAR(64) NOT NULL, 
	number INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	worker TEXT, 
	host TEXT, 
	container_id VARCHAR(80), 
	container_name TEXT, 
	exit_code INTEGER, 
	error TEXT, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	finished_at FLOAT, 
	reaped_at FLOAT, 
	pull_seconds FLOAT, 
	create_seconds FLOAT, 
	start_seconds FLOAT, 
	wait_seconds FLOAT, 
	reap_seconds FLOAT, 
	infra_retries INTEGER NOT NULL, 
	redeliveries INTEGER NOT NULL, 
	PRIMARY KEY (job_id, number), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);
INSERT INTO longshore_schema (version) VALUES (1);
