"""The systemd unit and the man pages: valid, hardened, and in step with the code.

The lists checked here come from the code itself (the validator's ``take``
calls, the click command tree), so adding a config key or a CLI option
without documenting it fails these tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from videoroomd.certs.generate import generate
from videoroomd.cli.main import cli
from videoroomd.config.errors import ConfigError
from videoroomd.config.load import parse
from videoroomd.config.ice_servers import TURN_SERVER_KEYS
from videoroomd.config.keys import TABLES
from videoroomd.config.schema import ServerConfig
from videoroomd.daemon.daemon import STOP_GRACE

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "videoroomd.service"
SYSUSERS = REPO / "systemd" / "videoroomd.sysusers"
MAN8 = REPO / "man" / "videoroomd.8"
MAN5 = REPO / "man" / "videoroomd.toml.5"
SHIPPED_EXEC = "/usr/local/bin/videoroomd"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `apt-get install {package}`", pytrace=False)
    return path


# -- the systemd unit --------------------------------------------------------------------


def unit_directives(text: str) -> dict[str, list[str]]:
    """``Key`` → every value it is given, in order (systemd allows repeats)."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m)?", value)
    assert match, f"cannot read {value!r} as a time span"
    number = float(match.group(1))
    return number * 60 if match.group(2) in ("min", "m") else number


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = _tool("systemd-analyze", "systemd")
    # The videoroomd of the Python running the tests first (a venv need not be on PATH).
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    installed = shutil.which("videoroomd", path=search)
    assert installed, "the videoroomd command is not installed; run `pip install -e .`"
    text = UNIT.read_text()
    exec_line = re.compile(r"^ExecStart=" + re.escape(SHIPPED_EXEC) + r"(?= )", re.MULTILINE)
    assert exec_line.search(text), f"ExecStart= should run {SHIPPED_EXEC}"
    # verify insists that ExecStart's program exists: point it at the installed one.
    copy = tmp_path / "videoroomd.service"
    copy.write_text(exec_line.sub(f"ExecStart={installed}", text))
    # verify also looks up Documentation=man:… pages: let it find ours.
    for page, section in ((MAN8, "man8"), (MAN5, "man5")):
        (tmp_path / "man" / section).mkdir(parents=True, exist_ok=True)
        shutil.copy(page, tmp_path / "man" / section / page.name)
    env = {**os.environ, "MANPATH": str(tmp_path / "man"), "SYSTEMD_LOG_COLOR": "0"}
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    # verify exits 0 even for unknown or misspelt directives; it only says so.
    about_us = [line for line in output.splitlines() if "videoroomd" in line]
    assert result.returncode == 0 and not about_us, f"systemd-analyze verify complained:\n{output}"


def test_unit_is_notify_and_hardened():
    d = unit_directives(UNIT.read_text())

    def one(key: str) -> str:
        assert key in d, f"{key}= is missing from {UNIT.name}"
        return d[key][-1]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("ExecStart").split() == [SHIPPED_EXEC, "serve", "--config", "/etc/videoroomd/videoroomd.toml"]
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("WatchdogSec") == "30"
    assert one("Restart") == "on-failure"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "LogsDirectory": "videoroomd",
    }.items():
        assert one(key) == value, f"{key}={value} expected"
    assert one("CapabilityBoundingSet") == "", "no capabilities at all"
    assert one("AmbientCapabilities") == ""
    families = set(" ".join(d["RestrictAddressFamilies"]).split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert any("/var/log/videoroomd" in v.split() for v in d.get("ReadWritePaths", []))
    # aiortc goes through cffi/ctypes: W^X memory would break it at runtime.
    assert "MemoryDenyWriteExecute" not in d
    # systemd must not kill the daemon while calls are still draining.
    drain = ServerConfig().drain_timeout + STOP_GRACE
    assert _seconds(one("TimeoutStopSec")) > drain, f"TimeoutStopSec= must exceed the default drain ({drain:g} s)"

    # The user the unit runs as is the one sysusers.d makes.
    if "DynamicUser" not in d:
        user = one("User")
        assert one("Group") == user
        entries = [line.split() for line in SYSUSERS.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert any(e[0] == "u" and e[1] == user for e in entries), f"{SYSUSERS.name} does not create {user}"


def test_sysusers_entry_makes_the_unit_user(tmp_path):
    sysusers = _tool("systemd-sysusers", "systemd")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    result = subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    user = unit_directives(UNIT.read_text())["User"][-1]
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(rf"^{re.escape(user)}:x:\d+:\d+:[^:]*:[^:]*:/usr/sbin/nologin$", passwd, re.MULTILINE), passwd
    assert re.search(rf"^{re.escape(user)}:x:\d+:", (root / "etc" / "group").read_text(), re.MULTILINE)


# -- man pages: rendering ----------------------------------------------------------------


@pytest.mark.parametrize("page", [MAN8, MAN5], ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page):
    groff = _tool("groff", "groff")
    result = subprocess.run([groff, "-man", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", f"groff warns about {page.name}:\n{result.stderr}"
    assert "\\-" in page.read_text(), "option dashes should be written \\-"


# -- man pages: reading them as text -------------------------------------------------------

_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\((aq)"), "'"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\(ti"), "~"),
    (re.compile(r"\\[&c|^]"), ""),
    (re.compile(r"\\[~ ]"), " "),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\e"), "\\\\"),
]
_FONT_MACROS = {"B", "I", "SM", "SB"}
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}


def _unescape(text: str) -> str:
    for pattern, replacement in _ESCAPES:
        text = pattern.sub(replacement, text)
    return text


def _macro_args(rest: str) -> list[str]:
    """Split a macro's arguments the way groff does ("" inside quotes is a quote)."""
    args, i = [], 0
    while i < len(rest):
        if rest[i] == " ":
            i += 1
        elif rest[i] == '"':
            i += 1
            arg = ""
            while i < len(rest):
                if rest.startswith('""', i):
                    arg, i = arg + '"', i + 2
                elif rest[i] == '"':
                    i += 1
                    break
                else:
                    arg, i = arg + rest[i], i + 1
            args.append(arg)
        else:
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            args.append(rest[i:end])
            i = end
    return args


def render_line(line: str) -> str:
    """What one source line says, as plain text (macros applied, escapes resolved)."""
    line = _unescape(line)
    if not line.startswith((".", "'")):
        return line
    name, _, rest = line[1:].partition(" ")
    if name in _FONT_MACROS or name in ("SY", "TQ", "TP", "IP", "SS", "SH"):
        return " ".join(_macro_args(rest))
    if name in _ALTERNATING:
        return "".join(_macro_args(rest))
    return ""


class ManPage:
    def __init__(self, path: Path):
        self.path = path
        self.lines = [l for l in path.read_text().splitlines() if not l.startswith(('.\\"', "'\\\""))]

    def sections(self, macro: str = ".SH") -> list[tuple[str, list[str]]]:
        """(heading, source lines) of each .SH (or .SS) section."""
        out: list[tuple[str, list[str]]] = []
        for line in self.lines:
            if line.startswith(macro + " "):
                out.append((render_line(line).strip(), []))
            elif out:
                out[-1][1].append(line)
        return out

    def section(self, test) -> list[str]:
        found = [body for heading, body in self.sections() if test(heading)]
        assert found, f"{self.path.name}: no section found by {test}"
        return found[0]

    @staticmethod
    def text(lines: list[str]) -> str:
        return re.sub(r"\s+", " ", " ".join(render_line(l) for l in lines)).strip()

    @staticmethod
    def entries(lines: list[str]) -> list[tuple[str, str]]:
        """(tag, body text) of every .TP/.TQ item in ``lines``; a .TQ tag shares the body.

        An item nested in another (inside .RS/.RE) is also part of the outer body.
        """
        items: list[tuple[list[str], list[str]]] = []
        open_items: list[tuple[list[str], list[str]]] = []  # one per .RS depth
        depth, i = 0, 0
        while i < len(lines):
            line = lines[i]
            if line.startswith((".TP", ".TQ")) and i + 1 < len(lines):
                tag_line = lines[i + 1]
                if line.startswith(".TQ") and len(open_items) > depth:
                    open_items[depth][0].append(render_line(tag_line).strip())
                else:
                    item = ([render_line(tag_line).strip()], [])
                    items.append(item)
                    open_items = open_items[:depth] + [item]
                for _tags, body in open_items[:-1]:
                    body.append(tag_line)
                i += 2
                continue
            if line.startswith(".RS"):
                depth += 1
            elif line.startswith(".RE"):
                depth = max(0, depth - 1)
                open_items = open_items[: depth + 1]
            elif depth == 0 and (line.split(" ")[0] in (".PP", ".P", ".LP", ".SS", ".SH")):
                open_items = []
            for _tags, body in open_items:
                body.append(line)
            i += 1
        return [(tag, ManPage.text(body)) for tags, body in items for tag in tags]


def _tagged(entries: list[tuple[str, str]], word: str) -> list[str]:
    """Bodies of the entries whose tag names ``word`` (a key, or an option among its spellings)."""
    pattern = re.compile(r"(?:^|[\s,])" + re.escape(word) + r"(?![\w-])")
    return [body for tag, body in entries if pattern.search(tag.split(" = ")[0] if " = " in tag else tag)]


def _says_default(body: str, shown: str) -> bool:
    return re.search(r"Default: " + re.escape(shown) + r"(?![\w]|\.\d)", body) is not None


# -- the configuration keys, from the schema ----------------------------------------------


def config_keys() -> tuple[set[str], list[dict]]:
    """Top-level tables, and each key with its table, its default (the schema's) and its check's limits."""
    tables = set(TABLES) | {"rooms"}
    keys: list[dict] = []
    for table, (table_keys, base) in TABLES.items():
        for key in table_keys:
            keys.append({"key": key.name, "table": "rooms" if table == "defaults" else table,
                         "default": key.default(base), "bounds": getattr(key.convert, "bounds", None),
                         "choices": getattr(key.convert, "choices", None)})
    assert tables >= {"server", "ice", "log", "defaults", "rooms"} and len(keys) >= 15
    return tables, keys


def turn_server_keys() -> set[str]:
    """The keys of one TURN server table."""
    return set(TURN_SERVER_KEYS)


def _number(value: float) -> str:
    """10.0 → "10", 16777216 → "16777216", 0.5 → "0.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shown(value) -> str | None:
    """A default as the man page writes it, or None when it has no single spelling."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return f'"{value}"'
    if value == ():
        return "[]"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
        return f'"{value[0]}:{value[1]}"'  # HOST:PORT
    return None


def _table_section(page: ManPage, table: str) -> list[str]:
    if table in ("rooms", "defaults"):
        return page.section(lambda h: "[defaults]" in h and "[rooms." in h)
    return page.section(lambda h: f"[{table}]" in h)


def test_man5_has_a_section_per_table():
    tables, _ = config_keys()
    page = ManPage(MAN5)
    headings = [h for h, _ in page.sections()]
    for table in tables:
        wanted = "[rooms." if table == "rooms" else f"[{table}]"
        assert any(wanted in h for h in headings), f"videoroomd.toml(5) has no section for [{table}]"


def test_man5_documents_every_config_key():
    _, keys = config_keys()
    page = ManPage(MAN5)
    missing, wrong = [], []
    for k in keys:
        bodies = _tagged(page.entries(_table_section(page, k["table"])), k["key"])
        where = f"[{k['table']}] {k['key']}"
        if not bodies:
            missing.append(where)
            continue
        body = bodies[0]
        shown = _shown(k["default"])
        if shown is not None and not _says_default(body, shown):
            wrong.append(f"{where}: should say 'Default: {shown}'")
        if k["bounds"]:
            low, high = k["bounds"]
            wanted = f"from {_number(low)} to {_number(high)}"
            if wanted not in body.lower():
                wrong.append(f"{where}: should give the range '{wanted}'")
        if k["choices"]:
            for option in k["choices"]:
                if f'"{option}"' not in body:
                    wrong.append(f'{where}: should name the choice "{option}"')
    assert not missing, "keys the validator accepts but videoroomd.toml(5) does not describe: " + ", ".join(missing)
    assert not wrong, "videoroomd.toml(5) disagrees with the config schema:\n" + "\n".join(wrong)


def test_man5_documents_turn_server_keys():
    page = ManPage(MAN5)
    entries = page.entries(_table_section(page, "rooms"))
    for key in turn_server_keys():
        assert _tagged(entries, key), f"videoroomd.toml(5) does not describe the TURN server key {key}"


def test_man5_example_is_a_valid_config_using_every_key(tmp_path):
    page = ManPage(MAN5)
    lines = page.section(lambda h: h.startswith("EXAMPLE"))
    start, end = lines.index(".EX"), lines.index(".EE")
    text = "\n".join(_unescape(l) for l in lines[start + 1:end]) + "\n"
    for name in ("tls", "dtls"):
        generate(tmp_path / f"{name}.crt", tmp_path / f"{name}.key", cn="example", days=1)
    text = text.replace("/etc/videoroomd/", f"{tmp_path}/")
    try:
        parse(text, "example", tmp_path)
    except ConfigError as error:
        pytest.fail(f"the EXAMPLE of videoroomd.toml(5) is not a valid config:\n{error}")
    _, keys = config_keys()
    unused = sorted({k["key"] for k in keys} - set(re.findall(r"^\s*(\w+)\s*=", text, re.MULTILINE))
                    - set(re.findall(r"[{,]\s*(\w+)\s*=", text)))
    assert not unused, f"the EXAMPLE of videoroomd.toml(5) should show every key; it leaves out {unused}"


# -- the command line, from the click tree ------------------------------------------------


def test_man8_documents_every_command_and_option():
    page = ManPage(MAN8)
    ctx = click.Context(cli)
    synopsis = ManPage.text(page.section(lambda h: h == "SYNOPSIS"))
    commands = page.section(lambda h: h == "COMMANDS")
    whole = ManPage.text(page.lines)

    group_words = [w for p in cli.params for w in p.opts + p.secondary_opts] + list(cli.get_help_option(ctx).opts)
    for word in group_words:
        assert re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", whole), f"videoroomd(8) does not mention {word}"

    subsections = {}
    current = None
    for line in commands:
        if line.startswith(".SS "):
            current = render_line(line).strip()
            subsections[current] = []
        elif current is not None:
            subsections[current].append(line)

    problems = []
    for name, command in sorted(cli.commands.items()):
        if command.hidden:
            continue
        if not re.search(r"videoroomd " + re.escape(name) + r"(?![\w-])", synopsis):
            problems.append(f"{name}: not in SYNOPSIS")
        if name not in subsections:
            problems.append(f"{name}: no '.SS {name}' under COMMANDS")
            continue
        lines = subsections[name]
        text = ManPage.text(lines)
        entries = ManPage.entries(lines)
        for param in command.params:
            if isinstance(param, click.Argument):
                metavar = (param.metavar or param.name.upper()).strip("[]")
                if metavar not in text:
                    problems.append(f"{name}: argument {metavar} not described")
                continue
            for opt in param.opts + param.secondary_opts:
                if not _tagged(entries, opt):
                    problems.append(f"{name}: option {opt} has no entry")
            bodies = _tagged(entries, param.opts[-1])
            if not bodies:
                continue
            body = bodies[0]
            if param.show_default and not param.is_flag and param.default is not None:
                shown = param.show_default if isinstance(param.show_default, str) else str(param.default)
                if not _says_default(body, shown):
                    problems.append(f"{name} {param.opts[-1]}: should say 'Default: {shown}'")
            kind = param.type
            if isinstance(kind, click.IntRange) and kind.min is not None and kind.max is not None:
                if f"from {kind.min} to {kind.max}" not in body.lower():
                    problems.append(f"{name} {param.opts[-1]}: should give the range from {kind.min} to {kind.max}")
            if isinstance(kind, click.Choice):
                for choice in kind.choices:
                    if not re.search(r"(?<![\w-])" + re.escape(choice) + r"(?![\w-])", body):
                        problems.append(f"{name} {param.opts[-1]}: should name the choice {choice}")
    assert not problems, "videoroomd(8) is out of step with the CLI:\n" + "\n".join(problems)


def test_man8_has_the_required_sections():
    headings = [h for h, _ in ManPage(MAN8).sections()]
    for wanted in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "SIGNALS", "FILES", "HTTP ENDPOINTS",
                   "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"):
        assert wanted in headings, f"videoroomd(8) has no {wanted} section"
    text = ManPage.text(ManPage(MAN8).lines)
    for word in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "VIDEOROOMD_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                 "/healthz", "/metrics", "/admin/rooms", "/socket/websocket", "/signaling/",
                 "/etc/videoroomd/videoroomd.toml", "videoroomd.toml(5)", "systemctl(1)"):
        assert word in text, f"videoroomd(8) does not mention {word}"
