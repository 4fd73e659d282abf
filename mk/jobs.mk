# jobs: the team deployment's worker (PERFLOOP_JOBS=queue, PostgreSQL) and its load bench.

.PHONY: worker team-bench

## Run one job worker against $DATABASE_URL (start as many as you like, on any machine).
worker: install migrate
	PERFLOOP_JOBS=queue $(PY) -m app worker

## Print the team-load figures (8 users x 3 turns, 2 workers, a throw-away PostgreSQL database).
team-bench: install postgres
	$(PY) bench/team_load.py
