"""The config corpus (files beside this module) and helpers to read it; importing it needs no Django."""

from pathlib import Path

from clusters.importers import FileSources, HostsMap, parse

CONFIGS = Path(__file__).resolve().parent
HOSTS = HostsMap.from_text((CONFIGS / "hosts").read_text(), "tests/configs/hosts")


def read(name: str) -> str:
    return (CONFIGS / name).read_text()


def parse_file(name: str, fmt: str = "auto"):
    """Parse a corpus file as the command line does: includes from disk, names from the corpus hosts map."""
    return parse(read(name), fmt, filename=str(CONFIGS / name), hosts=HOSTS, sources=FileSources())


def short(messages) -> list[tuple[int, str]]:
    """(line, text) pairs, so assertions need not repeat the absolute path."""
    return [(m.line, m.text) for m in messages]
