"""One message per student per day, and one total order of alerts (issue 24.5 and 24.7)."""

from datetime import date

from models.alerts import Alert, Rule, alert_id
from models.announcements import alert_order, announcements, order_key

DAY = date(2026, 10, 20)


def alert(sid: str, rule: Rule, day: date = DAY, about: Rule | None = None, start: date = DAY) -> Alert:
    return Alert(
        alert_id=alert_id(sid, rule, start, about),
        student_id=sid,
        rule=rule,
        raised_on=day,
        episode_start=start,
        days_silent=0,
        last_active_on=None,
        programme_code="BSC-CS",
        year_of_study=1,
        mode="FT",
        school="Computing",
        personal_tutor_id="T1",
        explanation=f"{rule.value} about {about}",
        about_rule=about,
    )


def test_a_students_alerts_of_one_day_are_one_announcement_in_reading_order() -> None:
    fader = [alert("s1", Rule.LOW_ATTENDANCE), alert("s1", Rule.LOW_ENGAGEMENT)]
    other = alert("s2", Rule.NO_ENGAGEMENT)
    later = alert("s1", Rule.ESCALATION, date(2026, 11, 3), Rule.LOW_ENGAGEMENT)
    found = announcements([later, other, *fader, fader[0]])  # fader[0] twice: a re-read batch
    assert [(a.student_id, a.day, [x.rule for x in a.alerts]) for a in found] == [
        ("s1", DAY, [Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE]),
        ("s2", DAY, [Rule.NO_ENGAGEMENT]),
        ("s1", date(2026, 11, 3), [Rule.ESCALATION]),
    ]
    assert found[0].lead.rule is Rule.LOW_ENGAGEMENT
    assert announcements([]) == []


def test_same_day_alerts_of_one_student_never_tie() -> None:
    # Two escalations and two re-engagements of one student on one day differ only by what they are about.
    same_day = [
        alert("s1", Rule.RE_ENGAGED, about=Rule.LOW_ENGAGEMENT),
        alert("s1", Rule.RE_ENGAGED, about=Rule.LOW_ATTENDANCE),
        alert("s1", Rule.ESCALATION, about=Rule.NO_ENGAGEMENT),
        alert("s1", Rule.NO_ENGAGEMENT, start=date(2026, 10, 13)),
    ]
    keys = [alert_order(a) for a in same_day]
    assert len(set(keys)) == len(keys)
    assert [a.rule for a in sorted(same_day, key=alert_order)] == [
        Rule.NO_ENGAGEMENT,
        Rule.ESCALATION,
        Rule.RE_ENGAGED,
        Rule.RE_ENGAGED,
    ]
    assert order_key("2026-10-20", "s1", "unknown_rule", None, "x")[2] == 5  # new rules last


def test_due_deliveries_become_one_email_per_student_day_and_recipient_and_one_post_per_alert() -> None:
    from datetime import UTC, datetime, timedelta

    from models.announcements import outbox_messages
    from models.outbox import OutboxEntry

    at = datetime(2026, 11, 11, tzinfo=UTC)
    fader = [alert("s1", Rule.LOW_ATTENDANCE), alert("s1", Rule.LOW_ENGAGEMENT)]
    later = alert("s1", Rule.ESCALATION, day=DAY + timedelta(days=1), about=Rule.LOW_ENGAGEMENT)
    other = alert("s2", Rule.NO_ENGAGEMENT)

    def entry(a: Alert, channel: str, target: str) -> OutboxEntry:
        return OutboxEntry(a.alert_id, a.student_id, channel, target, at, alert_json=a.model_dump_json())

    entries = [entry(a, "email", t) for a in [*fader, later, other] for t in ("T1", "T2")]
    entries += [entry(a, "webhook", "webhook-1") for a in fader]
    messages = outbox_messages(entries)
    emails = [m for m in messages if m.channel == "email"]
    assert len(emails) == 6  # (s1 day one, s1 day two, s2) x two recipients
    first = next(m for m in emails if m.target == "T1" and m.alerts[0].student_id == "s1")
    assert [a.rule for a in first.alerts] == [Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE]  # reading order
    assert [e.alert_id for e in first.entries] == [a.alert_id for a in first.alerts]
    posts = [m for m in messages if m.channel == "webhook"]
    assert [len(m.alerts) for m in posts] == [1, 1]  # a machine gets each alert on its own
    assert sum(len(m.entries) for m in messages) == len(entries)  # every delivery in exactly one
