"""How long ``broker users import`` takes for a file of 10,000 accounts (target: under 60 s on
SQLite), on SQLite and PostgreSQL.

Each engine gets a fresh node config and database (PostgreSQL: a database created for the run
from ``BROKER_TEST_POSTGRES``, or ``--dsn``) with one organisation tree; the file lists
``--rows`` accounts, a third of them verified, all with an organisation, designation, employee
ID, email and phone.  The time is the whole command: opening the database, reading and
checking the file, writing every account and its audit entry, signing the audit head.

    .venv/bin/python benchmarks/users_import.py [--rows 10000] [--engines sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import postgres_dsn  # noqa: E402
from broker.admin.commands import orgs_import, users_import  # noqa: E402
from broker.admin.user_file import HEADER  # noqa: E402
from broker.config import load_config  # noqa: E402
from broker.init_config import write_initial_config  # noqa: E402

TARGET_SECONDS = 60.0
ORGANISATIONS = ("mof", "mof.budget", "moe")  # the third a top-level sibling of the first


def organisations_yaml() -> str:
    entries = [f"  - {{id: {org}, name: {org.upper()}"
               + (f", parent: {org.rsplit('.', 1)[0]}}}" if "." in org else "}")
               for org in ORGANISATIONS]
    return "organisations:\n" + "\n".join(entries) + "\n"


def users_csv(rows: int) -> str:
    lines = [",".join(HEADER)]
    for n in range(rows):
        org = ORGANISATIONS[n % 3]
        verified = "verified" if n % 3 == 0 else ""
        lines.append(f"officer{n},Officer {n},{org},Section Officer,E-{n:06d},"
                     f"officer{n}@{org.split('.')[0]}.gov.in,+91 11 {n:08d},{verified}")
    return "\n".join(lines) + "\n"


def run(engine: str, rows: int, dsn: str) -> float:
    with tempfile.TemporaryDirectory() as folder, postgres_dsn(engine, dsn) as database:
        work = Path(folder)
        config_path = work / "homeserver.yaml"
        write_initial_config(config_path=config_path, server_name="bench.test", port=0,
                             bind_address="127.0.0.1", data_dir="data", database_engine=engine,
                             database_dsn=database, enable_registration=False, overwrite=True)
        config = load_config(config_path)
        (work / "orgs.yaml").write_text(organisations_yaml())
        users = work / "users.csv"
        users.write_text(users_csv(rows))
        with contextlib.redirect_stdout(io.StringIO()):
            assert orgs_import(config, work / "orgs.yaml") == 0
        output, errors = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
            status = users_import(config, users)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"{engine}: the import failed:\n{errors.getvalue()}")
        print(f"  {engine}: {output.getvalue().strip()}")
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of an empty database")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        seconds = run(engine, args.rows, args.dsn)
        verdict = "ok" if seconds < TARGET_SECONDS else "MISSED"
        print(f"users_import {engine:8s} {args.rows:,} rows  {seconds:6.2f} s"
              f"   target < {TARGET_SECONDS:.0f} s   {verdict}", flush=True)


if __name__ == "__main__":
    main()
