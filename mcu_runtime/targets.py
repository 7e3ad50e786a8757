"""Per-target build and run harness for the generated C runtime.

Builds a set of C sources for one MCU profile (``msfopt/data/mcus.toml``) with the
matching GCC, links them with our startup code and a stack-first linker script whose
RAM region is the profile's RAM (so a model that does not fit fails *at link time*),
then runs the ELF under QEMU with semihosting and our instruction-count TCG plugin.

Public API::

    load_profiles() -> dict[str, Profile]          # targets and boards (boards merged)
    resolve(name) -> Profile                        # board -> emulated target + overrides
    tool_available(target) -> bool
    missing_tools(target) -> list[str]
    build(target, sources, include_dirs, out_dir, defines=None, opt="-O2", ...) -> BuildResult
    run(target, elf, timeout_s=60, count_instructions=True, ...) -> RunResult
    plugin_path() -> Path                           # builds the QEMU plugin on demand

Errors: ``BuildError`` (with the compiler's one-line summary, e.g. "region `RAM'
overflowed by 4968 bytes"), ``ToolchainMissing`` (a ``BuildError``; says to run
scripts/install_toolchains.sh), ``RunTimeout``, ``RunError``.

The C side is ``mcu_runtime/targets/common/plat.h``: ``plat_puts``, ``plat_report``,
``plat_exit``, ``plat_stack_used``, ``plat_count_begin``/``plat_count_end``.
Instruction counts are *executed guest instructions*, not cycles.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = [
    "BuildError",
    "BuildResult",
    "FamilySpec",
    "Profile",
    "RunError",
    "RunResult",
    "RunTimeout",
    "ToolchainMissing",
    "build",
    "harness_dir",
    "load_profiles",
    "missing_tools",
    "plat_include_dir",
    "plugin_path",
    "resolve",
    "run",
    "targets_dir",
    "tool_available",
]

INSTALL_HINT = "run scripts/install_toolchains.sh (as root) to install the toolchains"

# Exit-code conventions (see targets/common/plat.h).
RC_STACK_OVERFLOW = 125
RC_EXCEPTION = 126
RC_FAULT = 127
RC_QEMU_ABORT = 134


# --------------------------------------------------------------------------- errors
class BuildError(RuntimeError):
    """Compilation or link failed. ``str(e)`` is a one-line summary; ``.output`` is the
    full compiler/linker output and ``.command`` the failing command."""

    def __init__(self, summary: str, output: str = "", command: Sequence[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.output = output
        self.command = list(command) if command else []


class ToolchainMissing(BuildError):
    """A compiler, binutils or QEMU binary needed for the target is not installed."""


class RunError(RuntimeError):
    """The emulator could not run the program (bad option, missing machine, ...)."""


class RunTimeout(RunError):
    """The program did not finish within the timeout; the emulator was killed."""


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class FamilySpec:
    name: str
    startup: tuple[str, ...]
    linker_script: str
    common_cflags: tuple[str, ...]
    common_ldflags: tuple[str, ...]
    libs: tuple[str, ...]
    semihosting: str  # "chardev" | "stdout" | "none"


@dataclass(frozen=True)
class Profile:
    """One MCU profile. For a board, ``target`` names the emulated target it maps onto and
    the fields already include the board's overrides (RAM size, clock, ...)."""

    name: str
    kind: str  # "target" | "board"
    target: str
    family: str
    core: str
    description: str
    gcc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    emu_ram_size: int
    stack_size: int
    clock_hz: int
    fpu: bool
    int_only: bool
    qemu: str
    machine: str
    qemu_args: tuple[str, ...]
    ram_reserve: int = 0  # RAM kept from the planner for platform/app statics (see mcus.toml)
    cycles: Mapping[str, float] = field(default_factory=dict)
    defsym: Mapping[str, int] = field(default_factory=dict)
    family_spec: FamilySpec | None = None

    @property
    def is_host(self) -> bool:
        return self.family == "host"

    def binutil(self, tool: str) -> str:
        """``size``/``nm``/``objdump`` matching the compiler (``arm-none-eabi-size``...)."""
        if self.gcc.endswith("gcc"):
            return self.gcc[: -len("gcc")] + tool
        return tool


_TARGET_KEYS = {f.name for f in dataclasses.fields(Profile)} - {"name", "kind", "target", "family_spec"}


def _read_toml() -> dict:
    try:
        data = importlib.resources.files("msfopt").joinpath("data/mcus.toml").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - source checkout
        data = (Path(__file__).resolve().parent.parent / "msfopt" / "data" / "mcus.toml").read_bytes()
    return tomllib.loads(data.decode("utf-8"))


def _mk_profile(name: str, kind: str, target: str, fields: dict, families: dict) -> Profile:
    unknown = set(fields) - _TARGET_KEYS
    if unknown:
        raise ValueError(f"mcus.toml: {kind} {name!r} has unknown keys {sorted(unknown)}")
    f = dict(fields)
    for k in ("cflags", "ldflags", "qemu_args"):
        f[k] = tuple(f.get(k, ()))
    f["cycles"] = dict(f.get("cycles", {}))
    f["defsym"] = dict(f.get("defsym", {}))
    f.setdefault("description", "")
    f.setdefault("ram_reserve", 0)
    fam = f["family"]
    if fam not in families:
        raise ValueError(f"mcus.toml: {kind} {name!r} uses unknown family {fam!r}")
    missing = _TARGET_KEYS - set(f)
    if missing:
        raise ValueError(f"mcus.toml: {kind} {name!r} lacks keys {sorted(missing)}")
    return Profile(name=name, kind=kind, target=target, family_spec=families[fam], **f)


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, Profile]:
    doc = _read_toml()
    families = {}
    for fname, spec in doc.get("family", {}).items():
        families[fname] = FamilySpec(
            name=fname,
            startup=tuple(spec.get("startup", ())),
            linker_script=spec.get("linker_script", ""),
            common_cflags=tuple(spec.get("common_cflags", ())),
            common_ldflags=tuple(spec.get("common_ldflags", ())),
            libs=tuple(spec.get("libs", ())),
            semihosting=spec.get("semihosting", "none"),
        )
    targets = doc.get("targets", {})
    out: dict[str, Profile] = {}
    for name, t in targets.items():
        out[name] = _mk_profile(name, "target", name, t, families)
    for name, b in doc.get("boards", {}).items():
        b = dict(b)
        tname = b.pop("target", None)
        if tname not in targets:
            raise ValueError(f"mcus.toml: board {name!r} maps to unknown target {tname!r}")
        if name in out:
            raise ValueError(f"mcus.toml: board {name!r} clashes with a target name")
        merged = dict(targets[tname])
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        out[name] = _mk_profile(name, "board", tname, merged, families)
    return out


def load_profiles() -> dict[str, Profile]:
    """All profiles from ``msfopt/data/mcus.toml``: emulated targets and real boards (a
    board's Profile already carries its target's fields plus the board's overrides)."""
    return dict(_load())


def resolve(name: str | Profile) -> Profile:
    """The profile for a target or board name (case-insensitive; '_' and '-' equivalent).
    A board resolves to its emulated target's build/run recipe with the board's RAM size,
    clock, etc. (``profile.target`` names the emulated target)."""
    if isinstance(name, Profile):
        return name
    profs = _load()
    if name in profs:
        return profs[name]
    norm = {k.lower().replace("_", "-"): v for k, v in profs.items()}
    key = str(name).lower().replace("_", "-")
    if key in norm:
        return norm[key]
    raise KeyError(f"unknown MCU target/board {name!r}; known: {', '.join(sorted(profs))}")


# --------------------------------------------------------------------------- paths/tools
def _pkg_dir() -> Path:
    try:
        p = importlib.resources.files(__package__ or "msfopt.mcu_runtime")
        if isinstance(p, Path):
            return p
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parent


def targets_dir() -> Path:
    return _pkg_dir() / "targets"


def plat_include_dir() -> Path:
    """Directory holding ``plat.h`` (add it to include_dirs of generated code)."""
    return targets_dir() / "common"


def harness_dir() -> Path:
    return _pkg_dir() / "harness"


def _cache_dir() -> Path:
    d = os.environ.get("MSFOPT_CACHE_DIR")
    base = Path(d) if d else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "msfopt"
    base.mkdir(parents=True, exist_ok=True)
    return base


def missing_tools(target: str | Profile, *, run: bool = True) -> list[str]:
    """Executables needed for ``target`` that are not on PATH (build tools, and with
    ``run=True`` the emulator; the host target needs valgrind only for counting)."""
    p = resolve(target)
    need = [p.gcc, p.binutil("size"), p.binutil("nm")]
    if run and not p.is_host:
        need.append(p.qemu)
        need.append("gcc")  # to build the instruction-count plugin
    return [t for t in need if t and shutil.which(t) is None]


def tool_available(target: str | Profile) -> bool:
    """True when everything needed to build *and run* for ``target`` is installed."""
    return not missing_tools(target)


def _require_tools(p: Profile, run: bool) -> None:
    miss = missing_tools(p, run=run)
    if miss:
        raise ToolchainMissing(f"{p.name}: missing {', '.join(miss)}; {INSTALL_HINT}")


# --------------------------------------------------------------------------- build
@dataclass
class BuildResult:
    target: str
    elf: Path
    text: int  # code + read-only data in flash (incl. vectors)
    data: int  # initialised RAM data (.data; on xtensa also .rodata, copied to DRAM)
    bss: int  # zero-initialised RAM (.bss), excluding the stack
    stack_reserved: int  # the .stack region at the bottom of RAM
    ram_used_static: int  # data + bss + stack_reserved
    flash_used: int  # text + data (load image)
    ram_size: int  # the RAM budget the link enforced (0 = not enforced, host)
    commands: list[list[str]]
    sections: dict[str, int]
    memory_usage: dict[str, tuple[int, int]]  # region -> (used, size) from ld
    stack_frames: dict[str, int]  # function -> frame bytes (-fstack-usage)
    sanitize: bool
    seconds: float
    link_output: str = ""


_ERR_PATTERNS = (
    re.compile(r"region [`'\"]?\w+['\"]? overflowed by \d+ bytes"),
    re.compile(r"section [`'\"]?[\w.]+['\"]? will not fit in region [`'\"]?\w+['\"]?"),
    re.compile(r"undefined reference to [`'\"]?[\w.$]+['\"]?"),
    re.compile(r"\berror: .*"),
    re.compile(r"\bfatal error: .*"),
)


def _summarise(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pat in _ERR_PATTERNS:
        for ln in lines:
            m = pat.search(ln)
            if m:
                if pat is _ERR_PATTERNS[0]:
                    return m.group(0)
                return ln if "error" in m.group(0) else m.group(0)
    return lines[-1] if lines else "build failed (no output)"


def _run_tool(cmd: list[str], commands: list[list[str]], timeout: float = 300.0, cwd=None) -> str:
    commands.append(cmd)
    try:
        cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, cwd=cwd)
    except FileNotFoundError as e:
        raise ToolchainMissing(f"{cmd[0]} not found; {INSTALL_HINT}", str(e), cmd) from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s", "", cmd) from None
    out = (cp.stdout or "") + (cp.stderr or "")
    if cp.returncode != 0:
        raise BuildError(_summarise(out), out, cmd)
    return out


def _defines_args(defines) -> list[str]:
    if not defines:
        return []
    if isinstance(defines, Mapping):
        items = defines.items()
    else:
        items = [(d, None) if isinstance(d, str) else tuple(d) for d in defines]
    args = []
    for k, v in items:
        k = str(k).removeprefix("-D")
        args.append(f"-D{k}" if v is None else f"-D{k}={v}")
    return args


def _parse_size_A(text: str) -> dict[str, int]:
    secs: dict[str, int] = {}
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            secs[parts[0]] = secs.get(parts[0], 0) + int(parts[1])
    return secs


_NON_ALLOC = (".comment", ".debug", ".ARM.attributes", ".riscv.attributes", ".xtensa.info",
              ".xt.prop", ".xt.lit", ".stab", ".note.gnu", ".symtab", ".strtab", ".shstrtab")


def _parse_memusage(text: str) -> dict[str, tuple[int, int]]:
    units = {"B": 1, "KB": 1024, "MB": 1024 * 1024, "GB": 1024**3}
    out = {}
    for m in re.finditer(r"^\s*(\w+):\s+(\d+)\s*(B|KB|MB|GB)\s+(\d+)\s*(B|KB|MB|GB)", text, re.M):
        out[m.group(1)] = (int(m.group(2)) * units[m.group(3)], int(m.group(4)) * units[m.group(5)])
    return out


def _parse_su(obj_dir: Path) -> dict[str, int]:
    frames: dict[str, int] = {}
    for su in obj_dir.glob("*.su"):
        for ln in su.read_text(errors="replace").splitlines():
            parts = ln.split("\t")
            if len(parts) >= 2 and parts[1].strip().isdigit():
                fn = parts[0].rsplit(":", 1)[-1]
                frames[fn] = max(frames.get(fn, 0), int(parts[1]))
    return frames


def build(
    target: str | Profile,
    sources: Iterable[Path | str],
    include_dirs: Iterable[Path | str] = (),
    out_dir: Path | str = "build",
    defines: Mapping[str, object] | Sequence[str] | None = None,
    opt: str = "-O2",
    *,
    stack_size: int | None = None,
    sanitize: bool = False,
    extra_cflags: Sequence[str] = (),
    extra_ldflags: Sequence[str] = (),
    name: str = "prog",
) -> BuildResult:
    """Compile ``sources`` for ``target`` (a target or board name) and link them with the
    target's startup/platform layer. The link enforces the profile's RAM and flash sizes.

    ``defines``: mapping ``{"N": 3}`` or list ``["N=3", "FLAG"]``. ``stack_size``
    overrides the profile's reserved stack. ``sanitize`` (host only) adds
    ``-fsanitize=address,undefined``. Raises ``BuildError``/``ToolchainMissing``."""
    t0 = time.perf_counter()
    p = resolve(target)
    fam = p.family_spec
    assert fam is not None
    _require_tools(p, run=False)
    out = Path(out_dir).resolve()
    obj_dir = out / f"obj-{name}"
    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    obj_dir.mkdir(parents=True)
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.is_file():
            raise BuildError(f"source not found: {s}")
    tdir = targets_dir()
    plat_srcs = [tdir / s for s in fam.startup]
    incs = [f"-I{plat_include_dir()}"] + [f"-I{Path(d).resolve()}" for d in include_dirs]
    dargs = _defines_args(defines)
    commands: list[list[str]] = []
    elf = out / (f"{name}.elf" if not p.is_host else name)
    if elf.exists():
        elf.unlink()

    if p.is_host:
        san = (["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=undefined"] if sanitize else [])
        cmd = [p.gcc, opt, *fam.common_cflags, *p.cflags, *san, *extra_cflags, *incs, *dargs,
               *(str(s) for s in srcs), *(str(s) for s in plat_srcs), *p.ldflags,
               *fam.common_ldflags, *extra_ldflags, *san, "-o", str(elf), *fam.libs]
        link_out = _run_tool(cmd, commands)
    else:
        if sanitize:
            raise BuildError(f"{p.name}: sanitizers are only available on the host target")
        cflags = [opt, *fam.common_cflags, *p.cflags, *extra_cflags, *incs, *dargs]
        objs = []
        for i, s in enumerate([*srcs, *plat_srcs]):
            o = obj_dir / f"{i:02d}_{s.stem}.o"
            _run_tool([p.gcc, *cflags, "-c", str(s), "-o", str(o)], commands)
            objs.append(str(o))
        syms = {
            "__flash_org": p.flash_origin,
            "__flash_len": p.flash_size,
            "__ram_org": p.ram_origin,
            "__ram_len": p.ram_size,
            "__stack_size": stack_size if stack_size is not None else p.stack_size,
            **p.defsym,
        }
        ld = [p.gcc, *p.ldflags, *fam.common_ldflags, "-T", str(tdir / fam.linker_script),
              *(f"-Wl,--defsym={k}={int(v):#x}" for k, v in syms.items()),
              f"-Wl,-Map={out / (name + '.map')}", *extra_ldflags,
              *objs, *fam.libs, "-o", str(elf)]
        link_out = _run_tool(ld, commands)

    size_txt = _run_tool([p.binutil("size"), "-A", str(elf)], commands)
    secs = _parse_size_A(size_txt)
    alloc = {k: v for k, v in secs.items() if not k.startswith(_NON_ALLOC)}
    if p.is_host:
        berk = _run_tool([p.binutil("size"), str(elf)], commands).splitlines()[-1].split()
        text, data, bss = int(berk[0]), int(berk[1]), int(berk[2])
        stack = 0
    else:
        stack = alloc.get(".stack", 0)
        data = alloc.get(".data", 0)
        bss = alloc.get(".bss", 0)
        text = sum(v for k, v in alloc.items() if k not in (".stack", ".data", ".bss"))
    return BuildResult(
        target=p.name,
        elf=elf,
        text=text,
        data=data,
        bss=bss,
        stack_reserved=stack,
        ram_used_static=data + bss + stack,
        flash_used=text + data,
        ram_size=p.ram_size,
        commands=commands,
        sections=alloc,
        memory_usage=_parse_memusage(link_out),
        stack_frames=_parse_su(obj_dir) if not p.is_host else {},
        sanitize=sanitize,
        seconds=time.perf_counter() - t0,
        link_output=link_out,
    )


# --------------------------------------------------------------------------- plugin
def plugin_source() -> Path:
    return _pkg_dir() / "plugin" / "icount.c"


def plugin_path() -> Path:
    """Path of the compiled QEMU instruction-count plugin, building it (host gcc) into
    the cache dir (``$MSFOPT_CACHE_DIR`` or ``~/.cache/msfopt``) when missing or stale."""
    src = plugin_source()
    code = src.read_bytes()
    tag = hashlib.sha256(code).hexdigest()[:12]
    so = _cache_dir() / f"libmsf_icount-{tag}.so"
    if so.exists():
        return so
    if shutil.which("gcc") is None:
        raise ToolchainMissing(f"host gcc not found (needed for the QEMU plugin); {INSTALL_HINT}")
    tmp = so.with_name(f".{so.name}.{os.getpid()}.tmp")
    cmd = ["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(src)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        raise BuildError("plugin: " + _summarise(cp.stderr), cp.stderr, cmd)
    os.replace(tmp, so)  # atomic: safe with parallel builders
    return so


# --------------------------------------------------------------------------- run
@dataclass
class RunResult:
    target: str
    exit_code: int
    stdout: str  # guest output (semihosting console / host stdout)
    reports: dict[str, int]  # plat_report labels (trailing '=' stripped) -> value
    instructions: int | None  # executed instructions, whole program
    instructions_window: int | None  # between plat_count_begin/_end (or count_window)
    instructions_range: int | None  # PC inside count_function / count_range
    windows: int  # completed count windows
    stack_hwm: int | None  # painted-stack high-water mark, bytes
    wall_seconds: float
    status: str  # ok | nonzero | stack_overflow | fault | emulator_abort | signal
    command: list[str]
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


_REPORT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)=(-?\d+)\s*$")


def _parse_reports(text: str) -> dict[str, int]:
    out = {}
    for ln in text.splitlines():
        m = _REPORT_RE.match(ln.strip())
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def _symbols(p: Profile, elf: Path) -> dict[str, tuple[int, int]]:
    cp = subprocess.run([p.binutil("nm"), "-S", "--defined-only", str(elf)],
                        capture_output=True, text=True, timeout=60)
    syms: dict[str, tuple[int, int]] = {}
    for ln in cp.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 4:
            addr, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
        elif len(parts) == 3:
            addr, size, name = int(parts[0], 16), 0, parts[2]
        else:
            continue
        if p.family == "arm":
            addr &= ~1  # Thumb bit
        syms.setdefault(name, (addr, size))
    return syms


def symbol_size(target: "str | Profile", elf: Path, name: str) -> int | None:
    """Size in bytes of the object ``name`` in ``elf`` as ``nm -S`` reports it (local statics
    included; GCC may suffix a local's name with ``.N``), or None when it is not in the ELF."""
    syms = _symbols(resolve(target), Path(elf))
    if name in syms:
        return syms[name][1]
    hits = [v for k, v in syms.items() if k.split(".")[0] == name]
    return hits[0][1] if len(hits) == 1 else None


def _status(rc: int) -> str:
    if rc == 0:
        return "ok"
    if rc == RC_STACK_OVERFLOW:
        return "stack_overflow"
    if rc in (RC_EXCEPTION, RC_FAULT):
        return "fault"
    if rc == RC_QEMU_ABORT:
        return "emulator_abort"
    if rc < 0:
        return "signal"
    return "nonzero"


def _communicate(cmd: list[str], timeout_s: float, cwd: str | None = None):
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, cwd=cwd)
    except FileNotFoundError:
        raise ToolchainMissing(f"{cmd[0]} not found; {INSTALL_HINT}", "", cmd) from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        raise RunTimeout(
            f"{Path(cmd[0]).name} did not finish within {timeout_s:g} s (killed)") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), \
        time.perf_counter() - t0


def _is_sanitized(p: Profile, elf: Path) -> bool:
    syms = _symbols(p, elf)
    return any(s.startswith("__asan_") or s.startswith("__ubsan_") for s in syms) or \
        b"__asan_init" in elf.read_bytes()


def run(
    target: str | Profile,
    elf: Path | str | BuildResult,
    timeout_s: float = 60,
    count_instructions: bool = True,
    *,
    count_window: tuple[str, str] | None = ("plat_count_begin", "plat_count_end"),
    count_function: str | None = None,
    count_range: tuple[str, str] | None = None,
) -> RunResult:
    """Run ``elf`` for ``target``: under QEMU (semihosting) for MCU targets, natively for
    ``host`` (under callgrind when counting, unless built with sanitizers).

    Instruction counting (QEMU plugin; host: callgrind ``--toggle-collect=main``):
    ``instructions`` is the whole program; ``instructions_window`` sums the instructions
    from each call of ``count_window[0]`` to the next call of ``count_window[1]``
    (callees included; defaults to ``plat_count_begin``/``plat_count_end`` when the
    program calls them); ``instructions_range`` counts instructions whose PC lies inside
    ``count_function`` (static extent, callees excluded) or between the two symbols of
    ``count_range`` (e.g. ``("__rt_start", "__rt_end")`` for code in section ``.text.rt``).

    Never hangs: after ``timeout_s`` the emulator's process group is killed and
    ``RunTimeout`` raised."""
    p = resolve(target)
    if isinstance(elf, BuildResult):
        elf = elf.elf
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise RunError(f"no such ELF: {elf}")
    fam = p.family_spec
    assert fam is not None

    if p.is_host:
        cmd = [str(elf)]
        counting = count_instructions and shutil.which("valgrind") is not None and \
            not _is_sanitized(p, elf)
        if counting:
            cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=main",
                   "--callgrind-out-file=/dev/null", str(elf)]
        rc, out, err, wall = _communicate(cmd, timeout_s)
        instructions = None
        if counting:
            m = re.search(r"Collected\s*:\s*(\d+)", err)
            instructions = int(m.group(1)) if m else None
        reports = _parse_reports(out)
        return RunResult(target=p.name, exit_code=rc, stdout=out, reports=reports,
                         instructions=instructions, instructions_window=None,
                         instructions_range=None, windows=0,
                         stack_hwm=reports.get("stack_hwm_bytes"), wall_seconds=wall,
                         status=_status(rc), command=cmd, stderr=err)

    _require_tools(p, run=True)
    with tempfile.TemporaryDirectory(prefix="msf-run-") as td:
        guest_out = Path(td) / "guest.txt"
        plug_out = Path(td) / "icount.txt"
        cmd = [p.qemu, "-M", p.machine, *p.qemu_args, "-nographic", "-monitor", "none",
               "-serial", "none"]
        if fam.semihosting == "chardev":
            cmd += ["-chardev", f"file,id=sh0,path={guest_out}",
                    "-semihosting-config", "enable=on,target=native,chardev=sh0"]
        else:
            cmd += ["-semihosting"]
        if count_instructions:
            args = [f"out={plug_out}"]
            syms = _symbols(p, elf)
            if count_window and count_window[0] in syms and count_window[1] in syms:
                args += [f"start={syms[count_window[0]][0]:#x}",
                         f"stop={syms[count_window[1]][0]:#x}"]
            elif count_window and count_window != ("plat_count_begin", "plat_count_end"):
                raise RunError(f"count_window symbols {count_window} not found in {elf.name}")
            if count_function:
                if count_function not in syms:
                    raise RunError(f"symbol {count_function!r} not found in {elf.name}")
                lo, size = syms[count_function]
                args += [f"lo={lo:#x}", f"hi={lo + size:#x}"]
            elif count_range:
                try:
                    lo, hi = syms[count_range[0]][0], syms[count_range[1]][0]
                except KeyError as e:
                    raise RunError(f"symbol {e.args[0]!r} not found in {elf.name}") from None
                args += [f"lo={lo:#x}", f"hi={hi:#x}"]
            cmd += ["-plugin", ",".join([str(plugin_path()), *args])]
        cmd += ["-kernel", str(elf)]
        rc, out, err, wall = _communicate(cmd, timeout_s, cwd=td)
        if rc < 0:  # killed by a signal (SIGABRT on a QEMU lockup): shell convention
            rc = 128 - rc
        guest = guest_out.read_text(errors="replace") if guest_out.exists() else ""
        if fam.semihosting != "chardev":
            guest = out
        plug = plug_out.read_text() if plug_out.exists() else ""
    if rc not in (0, RC_QEMU_ABORT) and not guest and not plug and err.strip():
        first = err.strip().splitlines()[0]
        raise RunError(f"{p.qemu} failed (rc {rc}): {first}")
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", plug)}
    reports = _parse_reports(guest)
    windows = counts.get("windows", 0)
    return RunResult(
        target=p.name,
        exit_code=rc,
        stdout=guest,
        reports=reports,
        instructions=counts.get("insns_total") if count_instructions else None,
        instructions_window=counts.get("insns_window") if windows else None,
        instructions_range=counts.get("insns_in_range") if (count_function or count_range) else None,
        windows=windows,
        stack_hwm=reports.get("stack_hwm_bytes"),
        wall_seconds=wall,
        status=_status(rc),
        command=cmd,
        stderr=err,
    )


# --------------------------------------------------------------------------- CLI
def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m msfopt.mcu_runtime.targets",
                                 description="msfopt MCU target harness")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list profiles and tool availability")
    st = sub.add_parser("selftest", help="build+run the conv self-test on targets")
    st.add_argument("targets", nargs="*")
    st.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "list":
        for n, p in sorted(load_profiles().items()):
            miss = missing_tools(p)
            print(f"{n:14s} {p.kind:6s} -> {p.target:13s} ram={p.ram_size:>8d} "
                  f"clock={p.clock_hz:>10d} {'ok' if not miss else 'missing: ' + ','.join(miss)}")
        return 0
    names = a.targets or [n for n, p in load_profiles().items() if p.kind == "target"]
    out = Path(a.out or tempfile.mkdtemp(prefix="msf-selftest-"))
    rc = 0
    for n in names:
        try:
            b = build(n, [harness_dir() / "conv_test.c"], [], out / n)
            r = run(n, b.elf)
            print(f"{n:14s} rc={r.exit_code} checksum={r.reports.get('checksum')} "
                  f"insns={r.instructions} window={r.instructions_window} "
                  f"stack_hwm={r.stack_hwm} ram_static={b.ram_used_static} "
                  f"build={b.seconds:.2f}s run={r.wall_seconds:.2f}s")
            rc |= r.exit_code != 0
        except (BuildError, RunError) as e:
            print(f"{n:14s} FAILED: {e}")
            rc = 1
    return rc


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
