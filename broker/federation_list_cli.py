"""``federation-list``: the federation authority's tool for signed federation lists.

    python -m broker.federation_list_cli keygen --out authority.key
    python -m broker.federation_list_cli pubkey --key authority.key
    python -m broker.federation_list_cli sign --key authority.key --authority NAME --version N \\
        --servers a.gov b.gov [--servers-file FILE] [--expires-days D] --out list.json [--force]
    python -m broker.federation_list_cli verify --authority-key PUB list.json

(``scripts/federation-list`` runs it.) Exit status: 0 on success, 1 when the command is refused
or a list is invalid (the reason goes to standard error), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from broker.clock import real_clock
from federation.federation_list import (
    create_list,
    format_ts,
    generate_authority_key,
    verify_list,
)
from protocol.errors import FederationListError
from protocol.signing import (
    SigningKey,
    encode_verify_key,
    read_signing_key_file,
    verify_key_id,
    write_signing_key_file,
)

_DAY_MS = 24 * 3600 * 1000


class CommandError(Exception):
    """A refusal reported to the user as ``federation-list: <message>`` with exit status 1."""


def _print_public_key(public_key: str) -> None:
    print(f"public key: {public_key}")
    print("pin it on every node (federation.federation_list.authority_key):")
    print("  federation:")
    print("    federation_list:")
    print(f'      authority_key: "{public_key}"')


def cmd_keygen(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CommandError(f"{out} already exists; refusing to overwrite a signing key "
                           "(use --force to replace it)")
    key = generate_authority_key()
    write_signing_key_file(out, key)
    print(f"wrote authority signing key {verify_key_id(key)} to {out} (mode 0600)")
    _print_public_key(encode_verify_key(key))


def cmd_pubkey(args: argparse.Namespace) -> None:
    key = _read_key(args.key)
    print(f"authority signing key {verify_key_id(key)} in {args.key}")
    _print_public_key(encode_verify_key(key))


def _read_key(path: str) -> SigningKey:
    try:
        return read_signing_key_file(path)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the authority key {path}: {exc}") from exc


def _read_servers_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def _existing_servers(out: Path, version: int, force: bool) -> set[str] | None:
    """The servers of the list already at ``out`` (None if none); refuse a version rollback."""
    if not out.exists():
        return None
    try:
        existing = json.loads(out.read_bytes())
        existing_version = existing["version"]
        servers = existing.get("servers", [])
        if not isinstance(existing_version, int) or not isinstance(servers, list):
            raise ValueError("no integer 'version' or no 'servers' list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if force:
            print(f"warning: cannot read the version of {out} ({exc}); overwriting (--force)")
            return None
        raise CommandError(f"cannot read the version of the existing {out}: {exc} "
                           "(use --force to overwrite it)") from exc
    if version <= existing_version:
        if not force:
            raise CommandError(f"version {version} is not greater than version "
                               f"{existing_version} in {out}; nodes would refuse it "
                               "(use a higher --version, or --force)")
        print(f"warning: version {version} is not greater than version {existing_version} "
              f"in {out}; nodes holding that version will refuse this list (--force)")
    return {s for s in servers if isinstance(s, str)}


def cmd_sign(args: argparse.Namespace) -> None:
    if args.servers is None and args.servers_file is None:
        raise CommandError("name the member servers with --servers and/or --servers-file")
    key = _read_key(args.key)
    servers = list(args.servers or [])
    if args.servers_file is not None:
        servers += _read_servers_file(args.servers_file)
    out = Path(args.out)
    previous = _existing_servers(out, args.version, args.force)
    issued_ts = real_clock().time_ms()
    expires_ts = None
    if args.expires_days is not None:
        if args.expires_days <= 0:
            raise CommandError("--expires-days must be positive")
        expires_ts = issued_ts + int(args.expires_days * _DAY_MS)
    try:
        doc = create_list(servers, args.version, args.authority, key,
                          expires_ts, issued_ts=issued_ts)
    except FederationListError as exc:
        raise CommandError(str(exc)) from exc
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc}") from exc
    names = doc["servers"]
    print(f"signed federation list version {args.version} of {args.authority} "
          f"with {verify_key_id(key)}: {len(names)} servers")
    if not names:
        print("warning: the list is empty; nodes that accept it federate only with their "
              "allow-list")
    if previous is not None:
        added = sorted(set(names) - previous)
        removed = sorted(previous - set(names))
        print(f"added: {', '.join(added) or 'none'}")
        print(f"removed: {', '.join(removed) or 'none'}")
    print(f"expires: {format_ts(expires_ts) if expires_ts is not None else 'never'}")
    print(f"wrote {out}")


def cmd_verify(args: argparse.Namespace) -> None:
    try:
        data = Path(args.list).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.list}: {exc}") from exc
    try:
        flist = verify_list(data, args.authority_key, real_clock().time_ms())
    except FederationListError as exc:
        raise CommandError(f"invalid federation list {args.list}: {exc.reason}: "
                           f"{exc.message}") from exc
    expiry = format_ts(flist.expires_ts) if flist.expires_ts is not None else "never"
    print(f"valid federation list {args.list}: version {flist.version} of {flist.authority}, "
          f"signed with {flist.key_id}")
    print(f"issued: {format_ts(flist.issued_ts)}; expires: {expiry}")
    print(f"{len(flist.servers)} servers:")
    for name in sorted(flist.servers):
        print(f"  {name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="federation-list",
        description="Create, sign and check the signed federation list of a federation "
                    "authority.")
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="create the authority signing key")
    keygen.add_argument("--out", required=True, help="key file to write (mode 0600)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key file")
    keygen.set_defaults(func=cmd_keygen)

    pubkey = sub.add_parser("pubkey", help="print the public key of an authority key file")
    pubkey.add_argument("--key", required=True, help="authority signing key file")
    pubkey.set_defaults(func=cmd_pubkey)

    sign = sub.add_parser("sign", help="write a signed federation list")
    sign.add_argument("--key", required=True, help="authority signing key file")
    sign.add_argument("--authority", required=True, help="the authority's name")
    sign.add_argument("--version", required=True, type=int,
                      help="list version; must be greater than the one already published")
    sign.add_argument("--servers", nargs="*", metavar="SERVER", help="member server names")
    sign.add_argument("--servers-file", help="file with one server name a line (# comments)")
    sign.add_argument("--expires-days", type=float, help="the list expires after D days")
    sign.add_argument("--out", required=True, help="list file to write")
    sign.add_argument("--force", action="store_true",
                      help="overwrite --out even if its version is not older")
    sign.set_defaults(func=cmd_sign)

    verify = sub.add_parser("verify", help="check a signed federation list")
    verify.add_argument("--authority-key", required=True,
                        help="the authority's public key (unpadded base64)")
    verify.add_argument("list", help="federation list file")
    verify.set_defaults(func=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CommandError as exc:
        print(f"federation-list: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
