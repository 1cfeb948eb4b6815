"""`persona chat | ask | serve RUN`: talk to a run's personas (the logic lives in chat.py and serve.py)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from personaforge.errors import PersonaForgeError

err_console = Console(stderr=True)
RUN_HELP = "Run folder, run name, or 'latest'."
RUNS_DIR = Path("outputs/runs")

PersonaOpt = Annotated[str | None, typer.Option("--persona", "-p", help="Persona name or alias (case-insensitive).")]
MaxNewOpt = Annotated[int | None, typer.Option(help="Answer length limit in tokens (default: the run's eval.max_new_tokens).")]
TemperatureOpt = Annotated[float | None, typer.Option(help="0 = greedy (default: the run's eval.temperature).")]
TopPOpt = Annotated[float | None, typer.Option(help="Nucleus sampling (default: the run's eval.top_p).")]
PenaltyOpt = Annotated[float | None, typer.Option(
    help="Above 1 discourages repeating tokens the answer already has"
         " (default: the run's eval.repetition_penalty, else 1).")]
EndRuleOpt = Annotated[str | None, typer.Option(
    help="Greedy only: 'likelier_than_not' ends an answer only where ending is likelier than going on; 'argmax' is"
         " plain greedy, which ends at the first point the end token is the likeliest (default: the run's"
         " eval.end_rule).")]
RunsDirOpt = Annotated[Path, typer.Option(help="Folder that holds the runs (output.dir).")]

HELP = """commands:
  /persona NAME   talk to another persona of this run (clears the history); /persona alone lists them
  /reset          forget the conversation so far
  /help           this list
  /exit           leave (Ctrl-D too); Ctrl-C stops an answer, or leaves at the prompt"""


def log(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def _open(run: str, runs_dir: Path):
    from personaforge.chat import ChatRun
    from personaforge.train.run import resolve_run

    return ChatRun.open(resolve_run(run, runs_dir))


def _persona(chat_run, name: str | None):
    if name is None:
        raise PersonaForgeError(f"--persona NAME is required; choose one of: {', '.join(p.name for p in chat_run.personas)}")
    return chat_run.persona(name)


def _check_flags(max_new_tokens: int | None, temperature: float | None, top_p: float | None,
                 repetition_penalty: float | None, end_rule: str | None) -> None:
    if max_new_tokens is not None and max_new_tokens < 1:
        raise PersonaForgeError("--max-new-tokens must be at least 1")
    if temperature is not None and temperature < 0:
        raise PersonaForgeError("--temperature must be 0 (greedy) or more")
    if top_p is not None and not 0 < top_p <= 1:
        raise PersonaForgeError("--top-p must be above 0 and at most 1")
    if repetition_penalty is not None and repetition_penalty < 1:
        raise PersonaForgeError("--repetition-penalty must be 1 (off) or more")
    if end_rule is not None:
        from typing import get_args

        from personaforge.config import EvalSection

        rules = get_args(EvalSection.model_fields["end_rule"].annotation)
        if end_rule not in rules:
            raise PersonaForgeError(f"--end-rule {end_rule}: use one of {', '.join(rules)}")


def _load(chat_run):
    with err_console.status(f"loading {chat_run.run.name}"):
        return chat_run.load(log)


def _start(run: str, runs_dir: Path, persona: str | None, flags: dict):
    """ask and chat: flags checked, run opened and persona found (all before the slow model load)."""
    _check_flags(**flags)
    chat_run = _open(run, runs_dir)
    return chat_run, _persona(chat_run, persona)


def _load_with(chat_run, flags: dict):
    session = _load(chat_run)
    return session, session.with_settings(**flags)


def ask_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    persona: PersonaOpt = None,
    max_new_tokens: MaxNewOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    repetition_penalty: PenaltyOpt = None,
    end_rule: EndRuleOpt = None,
    runs_dir: RunsDirOpt = RUNS_DIR,
) -> None:
    """Ask a persona one question; prints only the answer on stdout (for scripts)."""
    from personaforge.chat import disclosure

    flags = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                 repetition_penalty=repetition_penalty, end_rule=end_rule)
    chat_run, who = _start(run, runs_dir, persona, flags)
    if question == "-":
        question = sys.stdin.read()
    if not question.strip():
        raise PersonaForgeError("the question is empty")
    session, settings = _load_with(chat_run, flags)
    turn = session.prepare(who, question, max_new_tokens=settings.max_new_tokens)
    log(disclosure(who))  # stderr: stdout stays just the answer
    reply = session.reply(turn, settings)
    try:
        for piece in reply:
            sys.stdout.write(piece)
            sys.stdout.flush()
    finally:
        reply.close()
    sys.stdout.write("\n")


def chat_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    persona: PersonaOpt = None,
    max_new_tokens: MaxNewOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    repetition_penalty: PenaltyOpt = None,
    end_rule: EndRuleOpt = None,
    runs_dir: RunsDirOpt = RUNS_DIR,
) -> None:
    """Talk to a persona: multi-turn, in the run's training prompt format, answers streamed as they come."""
    flags = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                 repetition_penalty=repetition_penalty, end_rule=end_rule)
    chat_run, who = _start(run, runs_dir, persona, flags)
    session, settings = _load_with(chat_run, flags)
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
    Repl(session, who, settings).run()


class Repl:
    """The interactive loop: questions in, streamed answers out, slash commands in between."""

    def __init__(self, session, persona, settings) -> None:
        from personaforge.prompting import Exchange

        self.session, self.persona, self.settings = session, persona, settings
        self.history: list[Exchange] = []
        self.interactive = sys.stdin.isatty()

    def run(self) -> None:
        from personaforge.chat import disclosure

        log(disclosure(self.persona))
        log(f"run {self.session.chat_run.run.name}; /help lists commands, /exit leaves")
        while True:
            try:
                line = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return
            if not self.interactive:
                print(line)  # piped questions: echo them so the transcript reads like the session
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return
                continue
            self.answer(line)

    def command(self, line: str) -> bool:
        """Runs a slash command; False means leave."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            print(HELP)
        elif name == "/reset":
            self.history = []
            print("(history cleared)")
        elif name == "/persona":
            self.switch(argument)
        else:
            print(f"unknown command {name}; /help lists them")
        return True

    def switch(self, name: str) -> None:
        from personaforge.chat import disclosure

        if not name:
            for p in self.session.personas:
                print(f"{'*' if p == self.persona else ' '} {p.name}" + (f" ({', '.join(p.aliases)})" if p.aliases else ""))
            return
        try:
            self.persona = self.session.persona(name)
        except PersonaForgeError as exc:
            print(f"error: {str(exc).replace('--persona ', '/persona ', 1)}")
            return
        self.history = []
        print(f"(now talking to {self.persona.name}; history cleared)")
        log(disclosure(self.persona))  # a different real person: say it again, once

    def answer(self, question: str) -> None:
        from personaforge.chat import PromptTooLong
        from personaforge.prompting import Exchange

        try:
            turn = self.session.prepare(self.persona, question, self.history,
                                        max_new_tokens=self.settings.max_new_tokens)
        except PromptTooLong as exc:
            print(f"error: {exc}")
            return
        if turn.dropped:
            log(f"note: left out the {turn.dropped} oldest exchange(s) to fit {self.session.budget} tokens")
        reply = self.session.reply(turn, self.settings)
        sys.stdout.write(f"{self.persona.name}> ")
        sys.stdout.flush()
        try:
            for piece in reply:
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:
            print("\n(answer stopped; not kept in the history)")
            return
        finally:
            reply.close()
        print()
        self.history = [*turn.conversation.history, Exchange(question, reply.text)]


def serve_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    host: Annotated[str, typer.Option(help="Address to listen on; the default answers only this machine. Anywhere"
                                           " else needs the API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="PERSONA_API_KEY",
                                                   help="Key clients send as their API key (Authorization: Bearer)."
                                                        " Default off loopback: a new one, printed once.")] = None,
    max_batch: Annotated[int, typer.Option(help="Most requests decoded together.")] = 16,
    runs_dir: RunsDirOpt = RUNS_DIR,
) -> None:
    """An OpenAI-compatible API (/v1/models, /v1/chat/completions) where each persona is a model."""
    from personaforge.serve import PersonaAPI
    from personaforge.serving.app import ServeSecurity, create_app
    from personaforge.serving.batcher import Batcher
    from personaforge.studio.app import bind, serve, url_of

    if max_batch < 1:
        raise PersonaForgeError(f"--max-batch {max_batch}: use 1 or more")
    if api_key is not None and len(api_key) < 8:
        raise PersonaForgeError("--api-key: use at least 8 characters (or leave it out to get a random one)")
    chat_run = _open(run, runs_dir)
    security = ServeSecurity(host=host, always=api_key is not None)
    if api_key is not None:
        security.token = api_key
    sock = bind(host, port)
    signal.signal(signal.SIGTERM, _stop)  # `kill`, docker stop, systemd: leave as cleanly as on Ctrl-C
    try:
        session = _load(chat_run)
        batcher = Batcher(session, max_batch=max_batch, log=log)
        app = create_app(PersonaAPI(session), batcher, security)
        names = ", ".join(p.name for p in session.personas)
        log(f"note: these models imitate real people ({names}), trained on their interviews; they are not them.")
        if security.require_token and api_key is None:
            log(f"api key (shown once; clients send it as their API key): {security.token}")
        log(f"models: {', '.join(p.slug for p in session.personas)} (run {chat_run.run.name})")
        url = url_of(host, sock.getsockname()[1], ServeSecurity(host="127.0.0.1")).rstrip("/")
        serve(app, sock, lambda: print(f"serving on {url}", flush=True))
        batcher.close()
        log("stopped")
    except KeyboardInterrupt:
        log("stopped")
    finally:
        sock.close()


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    """Adds the chat, ask and serve commands to the main app."""
    app.command("chat")(chat_command)
    app.command("ask")(ask_command)
    app.command("serve")(serve_command)
