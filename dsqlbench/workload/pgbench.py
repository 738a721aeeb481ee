"""pgbench-style scripts as SQL workloads: parse once, draw a transaction per call.

Role: a user brings pgbench script files (or pgbench's builtin TPC-B script, see
``workload.tpcb``); ``PgbenchWorkload.next_transaction(rng)`` picks a script by weight
and evaluates it into a ``ScriptTransaction``: the SQL statements to send, in order,
each with its parameters, plus any ``\\sleep``. The load generator runs the statements
through one ``SqlSession`` and counts the script as one transaction, as pgbench does; a
retry after 40001 reruns the same statements (pgbench's ``--max-tries`` keeps the
drawn values too).

What is understood (pgbench's syntax, pgbench's semantics):
- ``\\set var expr`` with integer and double arithmetic (``+ - * / %``, integer division
  truncating toward zero), comparisons, ``AND/OR/NOT``, parentheses, ``:var``, and the
  functions ``random``, ``random_exponential``, ``random_gaussian``, ``random_zipfian``
  (pgbench's algorithms: Devroye's rejection method for the zipfian), ``abs``, ``int``,
  ``double``, ``greatest``, ``least``, ``mod``, ``sqrt``, ``pi``, ``exp``, ``ln``,
  ``pow``/``power``;
- ``\\sleep n [us|ms|s]``;
- SQL commands ending with ``;`` (several lines allowed); ``:var`` becomes a ``$n``
  parameter (pgbench's prepared query mode), so each statement text parses once;
- ``file@weight`` for script mixes (pgbench's ``-f file@weight``); predefined
  variables ``:scale`` and ``:client_id`` (and any passed in, like ``-D``).

Invariants: every draw comes from the ``numpy.random.Generator`` passed in, in script
order, so the same generator state gives the same transaction; nothing reads a clock or
global random state. Bad scripts raise ``ScriptError`` (a ``ConfigError``) naming file
and line: syntax when the file is parsed, an undefined variable or an unknown function
before the run (``check_script``), what only a draw can reveal (a division by zero)
when the script runs, still as one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dsqlbench.errors import ConfigError, UserError

MIN_ZIPFIAN_PARAM = 1.001
MAX_ZIPFIAN_PARAM = 1000.0
MIN_GAUSSIAN_PARAM = 2.0
_VARIABLE = re.compile(r"(?<!:):([A-Za-z0-9_]+)")
_SLEEP_UNITS_US = {"us": 1, "ms": 1000, "s": 1_000_000}


@dataclass(frozen=True)
class SqlStep:
    sql: str
    params: tuple = ()


@dataclass(frozen=True)
class SleepStep:
    duration_us: int


@dataclass(frozen=True)
class ScriptTransaction:
    """One script execution: what the client sends, in order."""

    script: str
    steps: tuple

    @property
    def statements(self) -> list[SqlStep]:
        return [s for s in self.steps if isinstance(s, SqlStep)]


class ScriptError(ConfigError):
    """A bad script: ``ConfigError(source, key, problem)`` that can also be rebuilt from
    its one-line message alone, as simpy does when it re-raises an exception out of a
    simulated process (``type(error)(*error.args)``); a plain ``ConfigError`` would
    turn into a ``TypeError`` there, and a user error into a crash."""

    def __init__(self, source: str, key: str | None = None, problem: str | None = None):
        if problem is None:  # rebuilt from args: the message is already whole
            self.source, self.key, self.problem = source, None, source
            UserError.__init__(self, source)
            return
        super().__init__(source, key, problem)


# --- expressions ------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)"
                    r"|(?P<var>:[A-Za-z0-9_]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op><>|!=|<=|>=|<<|>>|[-+*/%()<>=,&|#~]))")


class _ExprParser:
    """pgbench's \\set grammar, as a Pratt parser producing nested tuples."""

    _BINARY = {"or": 1, "and": 2, "=": 4, "<>": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "|": 5, "#": 5, "&": 6, "<<": 7, ">>": 7, "+": 8, "-": 8, "*": 9, "/": 9, "%": 9}

    def __init__(self, text: str):
        self.tokens = self._tokenize(text)
        self.i = 0

    @staticmethod
    def _tokenize(text: str) -> list:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                raise ValueError(f"unexpected character {text[pos:].strip()[0]!r}")
            kind = match.lastgroup
            value = match.group(kind)
            if kind == "name":
                value = value.lower()
            tokens.append((kind, value))
            pos = match.end()
        return tokens

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise ValueError(f"expected {value!r}")

    def parse(self):
        expr = self.expression(0)
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return expr

    def expression(self, min_precedence: int):
        left = self.unary()
        while True:
            kind, value = self.peek()
            op = value if kind in ("op", "name") else None
            precedence = self._BINARY.get(op)
            if precedence is None or precedence <= min_precedence:
                return left
            self.take()
            left = ("op", op, left, self.expression(precedence))

    def unary(self):
        kind, value = self.peek()
        if value in ("-", "+", "~") and kind == "op":
            self.take()
            return ("neg" if value == "-" else "bitnot" if value == "~" else "pos", self.unary())
        if kind == "name" and value == "not":
            self.take()
            return ("not", self.expression(3))
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            is_double = any(c in value for c in ".eE")
            return ("const", float(value) if is_double else int(value))
        if kind == "var":
            return ("var", value[1:])
        if kind == "name":
            if value in ("true", "false"):
                return ("const", value == "true")
            if value == "null":
                return ("const", None)
            self.expect("(")
            args = []
            if self.peek()[1] != ")":
                args.append(self.expression(0))
                while self.peek()[1] == ",":
                    self.take()
                    args.append(self.expression(0))
            self.expect(")")
            return ("call", value, args)
        if value == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        raise ValueError(f"unexpected {value!r}" if value else "unexpected end of expression")


def _int(value) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"cannot use {value!r} as an integer")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("double to int overflow")
        return int(value)
    return value


def _arith(op: str, a, b):
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if op == "/":
            if b == 0:
                raise ValueError("division by zero")
            return a / b
        if op == "%":
            raise ValueError("% needs integer operands")
        return {"+": a + b, "-": a - b, "*": a * b}[op]
    a, b = _int(a), _int(b)
    if op in ("/", "%"):
        if b == 0:
            raise ValueError("division by zero")
        quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1)
        return quotient if op == "/" else a - b * quotient
    return {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "#": a ^ b,
            "<<": a << b, ">>": a >> b}[op]


class Evaluator:
    """Evaluates parsed \\set expressions against variables, drawing from ``rng``."""

    def __init__(self, rng: np.random.Generator, variables: dict):
        self.rng = rng
        self.variables = variables

    def eval(self, node):
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "var":
            if node[1] not in self.variables:
                raise ValueError(f"undefined variable \"{node[1]}\"")
            return self.variables[node[1]]
        if kind == "neg":
            return -self.eval(node[1])
        if kind == "pos":
            return self.eval(node[1])
        if kind == "bitnot":
            return ~_int(self.eval(node[1]))
        if kind == "not":
            return not self.eval(node[1])
        if kind == "op":
            return self._binary(node[1], node[2], node[3])
        return self._call(node[1], [self.eval(arg) for arg in node[2]])

    def _binary(self, op: str, left, right):
        if op == "and":
            return bool(self.eval(left)) and bool(self.eval(right))
        if op == "or":
            return bool(self.eval(left)) or bool(self.eval(right))
        a, b = self.eval(left), self.eval(right)
        if op in ("=", "<>", "!=", "<", "<=", ">", ">="):
            return {"=": a == b, "<>": a != b, "!=": a != b, "<": a < b, "<=": a <= b,
                    ">": a > b, ">=": a >= b}[op]
        return _arith(op, a, b)

    def _call(self, name: str, args: list):
        function = getattr(self, f"_f_{name}", None)
        if function is None:
            raise ValueError(f"unknown function \"{name}\"")
        return function(*args)

    # pgbench's random functions: inclusive bounds, pgbench's algorithms.
    def _bounds(self, lb, ub) -> tuple[int, int]:
        lb, ub = _int(lb), _int(ub)
        if ub < lb:
            raise ValueError(f"empty range given to random: {lb} > {ub}")
        return lb, ub

    def _f_random(self, lb, ub):
        lb, ub = self._bounds(lb, ub)
        return int(self.rng.integers(lb, ub, endpoint=True))

    def _f_random_exponential(self, lb, ub, parameter):
        lb, ub = self._bounds(lb, ub)
        if parameter <= 0.0:
            raise ValueError("exponential parameter must be greater than zero")
        cut = math.exp(-parameter)
        uniform = 1.0 - self.rng.random()
        rand = -math.log(cut + (1.0 - cut) * uniform) / parameter
        return lb + int((ub - lb + 1) * rand)

    def _f_random_gaussian(self, lb, ub, parameter):
        lb, ub = self._bounds(lb, ub)
        if parameter < MIN_GAUSSIAN_PARAM:
            raise ValueError(f"gaussian parameter must be at least {MIN_GAUSSIAN_PARAM}")
        while True:
            u1, u2 = 1.0 - self.rng.random(), self.rng.random()
            stdev = math.sqrt(-2.0 * math.log(u1)) * math.sin(2.0 * math.pi * u2)
            if -parameter <= stdev < parameter:
                break
        rand = (stdev + parameter) / (parameter * 2.0)
        return lb + int((ub - lb + 1) * rand)

    def _f_random_zipfian(self, lb, ub, s):
        lb, ub = self._bounds(lb, ub)
        if not MIN_ZIPFIAN_PARAM <= s <= MAX_ZIPFIAN_PARAM:
            raise ValueError(f"zipfian parameter must be in range [{MIN_ZIPFIAN_PARAM:.3f}, "
                             f"{MAX_ZIPFIAN_PARAM:.0f}] (not {s})")
        return lb - 1 + iterative_zipfian(self.rng, ub - lb + 1, float(s))

    def _f_abs(self, value):
        return abs(value)

    def _f_int(self, value):
        return _int(value)

    def _f_double(self, value):
        return float(value)

    def _f_greatest(self, *values):
        return max(values)

    def _f_least(self, *values):
        return min(values)

    def _f_mod(self, a, b):
        return _arith("%", a, b)

    def _f_sqrt(self, value):
        return math.sqrt(value)

    def _f_pi(self):
        return math.pi

    def _f_exp(self, value):
        return math.exp(value)

    def _f_ln(self, value):
        return math.log(value)

    def _f_pow(self, a, b):
        return float(a) ** float(b)

    _f_power = _f_pow


def iterative_zipfian(rng: np.random.Generator, n: int, s: float) -> int:
    """pgbench's ``computeIterativeZipfian``: Devroye's rejection method, 1..n, s > 1."""
    if n <= 1:
        return 1
    b = 2.0 ** (s - 1.0)
    while True:
        u, v = rng.random(), rng.random()
        try:
            x = math.floor(u ** (-1.0 / (s - 1.0)))
        except OverflowError:  # C's pow gives inf here, which the x <= n test rejects
            continue
        t = (1.0 + 1.0 / x) ** (s - 1.0)
        if v * x * (t - 1.0) / (b - 1.0) <= t / b and x <= n:
            return int(x)


# --- scripts ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SetCommand:
    variable: str
    expr: tuple
    line: int


@dataclass(frozen=True)
class SleepCommand:
    amount: tuple     # ("const", n) or ("var", name)
    unit_us: int
    line: int


@dataclass(frozen=True)
class SqlCommand:
    sql: str          # with $n in place of :var
    variables: tuple  # the variable behind each $n
    line: int


@dataclass(frozen=True)
class Script:
    name: str
    commands: tuple
    weight: int = 1


def parse_script(text: str, name: str = "script", weight: int = 1) -> Script:
    """Parse a pgbench script; ConfigError names the script and line of a problem."""
    if weight < 0:
        raise ConfigError(name, None, f"weight must be >= 0, got {weight}")
    commands, buffer, start_line = [], [], 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue  # blank lines and comments between commands
        if not buffer and line.lstrip().startswith("\\"):
            while line.endswith("\\") and i < len(lines):  # backslash continues a meta-command
                line, i = line[:-1] + " " + lines[i], i + 1
            commands.append(_meta_command(line.strip(), name, number))
            continue
        if not buffer:
            start_line = number
        buffer.append(line)
        statements, rest = _split_sql("\n".join(buffer))
        for sql in statements:
            commands.append(_sql_command(sql, start_line))
        buffer = [rest] if _strip_comments(rest) else []
    if buffer and _strip_comments("\n".join(buffer)):
        commands.append(_sql_command("\n".join(buffer), start_line))
    if not commands:
        raise ConfigError(name, None, "the script has no commands")
    return Script(name, tuple(commands), weight)


def check_script(script: Script, predefined, source: str | None = None) -> None:
    """Refuse, before any run, a script that uses a variable no earlier ``\\set`` (and
    none of ``predefined``) defines, or calls a function pgbench does not have.
    ``source`` names the file in the message (default: the script's name)."""
    defined = set(predefined)
    where = source or script.name
    for command in script.commands:
        if isinstance(command, SetCommand):
            _check_expression(command.expr, defined, where, command.line)
            defined.add(command.variable)
        elif isinstance(command, SleepCommand):
            _check_expression(command.amount, defined, where, command.line)
        else:
            for name in command.variables:
                _check_expression(("var", name), defined, where, command.line)


def _check_expression(node: tuple, defined: set, source: str, line: int) -> None:
    kind = node[0]
    if kind == "var" and node[1] not in defined:
        known = ", ".join(f":{name}" for name in sorted(defined)) or "none"
        raise ScriptError(source, f"line {line}",
                          f"undefined variable \":{node[1]}\" (defined at this line: {known}; "
                          "a variable must be \\set on an earlier line)")
    if kind == "call" and not hasattr(Evaluator, f"_f_{node[1]}"):
        names = sorted(n.removeprefix("_f_") for n in dir(Evaluator) if n.startswith("_f_"))
        raise ScriptError(source, f"line {line}",
                          f"unknown function {node[1]}() (pgbench functions here: {', '.join(names)})")
    for child in node[1:]:
        children = child if isinstance(child, list) else [child]
        for item in children:
            if isinstance(item, tuple):
                _check_expression(item, defined, source, line)


def _split_sql(text: str) -> tuple[list[str], str]:
    """Complete statements (ending with ``;`` outside quotes), with ``--`` comments
    removed, and the unfinished rest of ``text``."""
    statements, current, i, quote = [], [], 0, None
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif char == ";":
            sql = _strip_comments("".join(current))
            if sql:
                statements.append(sql)
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    return statements, "".join(current)


def _strip_comments(sql: str) -> str:
    """``sql`` without blank lines and whole-line comments, trimmed."""
    lines = [line.rstrip() for line in sql.splitlines()
             if line.strip() and not line.strip().startswith("--")]
    return "\n".join(lines).strip()


def _sql_command(sql: str, line: int) -> SqlCommand:
    variables: list[str] = []

    def placeholder(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            variables.append(name)
        return f"${variables.index(name) + 1}"
    return SqlCommand(_VARIABLE.sub(placeholder, _strip_comments(sql)), tuple(variables), line)


def _meta_command(line: str, script: str, number: int):
    word, _, rest = line[1:].partition(" ")
    word, rest = word.lower(), rest.strip()
    where = f"line {number}"
    if word == "set":
        variable, _, expression = rest.partition(" ")
        if not variable or not expression.strip():
            raise ConfigError(script, where, "\\set needs a variable and an expression")
        try:
            return SetCommand(variable, _ExprParser(expression).parse(), number)
        except ValueError as error:
            raise ConfigError(script, where, f"\\set {variable}: {error}") from None
    if word == "sleep":
        parts = rest.split()
        if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1] not in _SLEEP_UNITS_US):
            raise ConfigError(script, where, "\\sleep takes a number or :variable and a unit us|ms|s")
        amount = ("var", parts[0][1:]) if parts[0].startswith(":") else ("const", _number(parts[0], script, where))
        return SleepCommand(amount, _SLEEP_UNITS_US[parts[1] if len(parts) == 2 else "s"], number)
    raise ConfigError(script, where, f"unsupported pgbench meta-command \\{word}")


def _number(text: str, script: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(script, where, f"invalid number {text!r}") from None


def load_script(spec: str | Path) -> Script:
    """A script file, with an optional ``@weight`` suffix as pgbench's ``-f``."""
    text = str(spec)
    weight = 1
    if "@" in Path(text).name:
        text, _, weight_text = text.rpartition("@")
        try:
            weight = int(weight_text)
        except ValueError:
            raise ConfigError(str(spec), None, f"invalid weight {weight_text!r}") from None
    path = Path(text)
    try:
        source = path.read_text()
    except OSError as error:
        raise ConfigError(str(path), None, f"cannot read the script: {error.strerror}") from None
    return parse_script(source, path.name, weight)


# --- the workload -------------------------------------------------------------------------

class PgbenchWorkload:
    """A weighted mix of scripts; each call draws one script execution."""

    def __init__(self, scripts: list[Script], variables: dict | None = None):
        if not scripts:
            raise ConfigError("pgbench", None, "no scripts given")
        self.scripts = list(scripts)
        self.weights = np.array([s.weight for s in scripts], dtype=np.float64)
        if self.weights.sum() <= 0:
            raise ConfigError("pgbench", None, "total script weight must be positive")
        self.cumulative = np.cumsum(self.weights)
        self.variables = {"scale": 1, **(variables or {})}
        for script in self.scripts:  # before any draw: a bad name is not a mid-run crash
            check_script(script, [*self.variables, "client_id"])

    def pick(self, rng: np.random.Generator) -> Script:
        if len(self.scripts) == 1:
            return self.scripts[0]
        # pgbench draws an integer in [0, total weight) and walks the cumulative weights.
        draw = int(rng.integers(0, int(self.cumulative[-1])))
        return self.scripts[int(np.searchsorted(self.cumulative, draw, side="right"))]

    def next_transaction(self, rng: np.random.Generator, client_id: int = 0) -> ScriptTransaction:
        script = self.pick(rng)
        return run_script(script, rng, {**self.variables, "client_id": client_id})


def run_script(script: Script, rng: np.random.Generator, variables: dict) -> ScriptTransaction:
    """Evaluate a script's meta-commands in order; SQL steps carry the values."""
    variables = dict(variables)
    evaluator = Evaluator(rng, variables)
    steps = []
    for command in script.commands:
        try:
            if isinstance(command, SetCommand):
                variables[command.variable] = evaluator.eval(command.expr)
            elif isinstance(command, SleepCommand):
                amount = _int(evaluator.eval(command.amount))
                steps.append(SleepStep(amount * command.unit_us))
            else:
                steps.append(SqlStep(command.sql, tuple(evaluator.eval(("var", v)) for v in command.variables)))
        except ValueError as error:
            raise ScriptError(script.name, f"line {command.line}", str(error)) from None
    return ScriptTransaction(script.name, tuple(steps))


@dataclass
class ScriptOutcome:
    """How one execution of a script's statements ended."""

    committed: bool
    error: object = None                         # the SqlError that stopped it, if any
    statements: list = field(default_factory=list)  # StatementResults, in order

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.retryable


def execute_transaction(session, txn: ScriptTransaction):
    """Generator: send a script transaction's statements through ``session`` in order
    (``SleepStep``s are skipped: a timed driver sleeps itself). The first error stops
    it and rolls back an open transaction block, as pgbench does before a retry."""
    outcome = ScriptOutcome(committed=False)
    for step in txn.steps:
        if not isinstance(step, SqlStep):
            continue
        result = yield from session.execute(step.sql, step.params)
        outcome.statements.append(result)
        if result.error is not None:
            outcome.error = result.error
            if session.in_transaction:
                outcome.statements.append((yield from session.execute("ROLLBACK")))
            return outcome
    outcome.committed = True
    return outcome
