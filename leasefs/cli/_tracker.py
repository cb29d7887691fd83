"""The briefing as a Markdown hand-off file, for people and agents without MCP."""

from __future__ import annotations

from datetime import UTC, datetime

from ..wire import Briefing, Work


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def _work_lines(work: Work) -> list[str]:
    lines = [f"- **{work.title}** (work {work.id}, {work.owner.name}, {_when(work.updated_at)})"]
    if work.paths:
        lines.append(f"  - paths: {', '.join(f'`{p}`' for p in work.paths)}")
    if work.plan:
        lines.append(f"  - plan: {work.plan}")
    if work.progress:
        lines.append(f"  - progress: {work.progress}")
    if work.notes:
        lines.append(f"  - notes: {work.notes}")
    handoff = work.handoff
    if handoff is not None:
        lines.append(f"  - summary: {handoff.summary}")
        for label, items in (
            ("next steps", handoff.next_steps), ("decisions", handoff.decisions),
            ("learnings", handoff.learnings), ("failed approaches", handoff.failed_approaches),
        ):  # fmt: skip
            if items:
                lines.append(f"  - {label}: " + "; ".join(items))
        for check in handoff.checks:
            verdict = "passed" if check.passed else f"FAILED (exit {check.exit_code})"
            lines.append(f"  - check `{check.name}` (`{check.command}`): {verdict}")
    return lines


def render(briefing: Briefing) -> str:
    """Markdown with the same sections as the MCP briefing."""
    out = [
        f"# Hand-off: {briefing.workspace}",
        "",
        f"Written {_when(datetime.now(UTC).timestamp())} by {briefing.you.name} with `leasefs tracker`.",
        "",
        "## Context",
        "",
        briefing.context.text.strip() or "_No context document yet (leasefs_context_update)._",
        "",
    ]
    for title, works in (
        ("Active work", briefing.active_work),
        ("Parked work (resumable)", briefing.parked_work),
        ("Recently finished", briefing.recently_finished),
    ):
        out += [f"## {title}", ""]
        out += [line for w in works for line in _work_lines(w)] or ["_None._"]
        out.append("")
    out += ["## Follow-ups", ""]
    out += [f"- [ ] {step}" for step in briefing.follow_ups] or ["_None._"]
    out += ["", "## Leases", ""]
    leases = [
        f"- `{s.path}`: "
        + (
            f"held by {s.lease.holder.name} since {_when(s.lease.acquired_at)}"
            if s.lease
            else "free"
        )
        + (f"; waiting: {', '.join(w.name for w in s.waiters)}" if s.waiters else "")
        for s in briefing.leases
    ]
    out += leases or ["_None held._"]
    out += ["", "## Memories", ""]
    out += [
        f"- {m.text}"
        + (f" ({', '.join(m.paths)})" if m.paths else "")
        + (" **stale**" if m.stale else "")
        for m in briefing.memories
    ] or ["_None._"]
    out += ["", "## Conflicts (last day)", ""]
    out += [
        f"- `{c.path}`: {c.agent_name} kept its file; copy `{c.detail.get('copy_path')}`"
        for c in briefing.conflicts
    ] or ["_None._"]
    out += ["", "## Hot files (last day)", ""]
    out += [f"- `{h.path}`: {h.versions} versions" for h in briefing.hot_files] or ["_None._"]
    out += ["", "## Unread messages", ""]
    out += [
        f"- thread {t.id} **{t.topic}** from {t.opened_by.name}: {t.messages[-1].body if t.messages else ''}"
        for t in briefing.unread
    ] or ["_None._"]
    return "\n".join(out) + "\n"
