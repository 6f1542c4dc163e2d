"""Notifications: run status fan-out (in-app + real SMTP), unsubscribe links, preferences, follows, reading."""

from __future__ import annotations

import httpx

from app.notifications.services import notify_run_status
from tests.client import GraphQLClient
from tests.helpers import eventually
from tests.smtp import Mailbox, mailbox_fixture  # noqa: F401
from tests.test_discussions import comment_on, discussion_in, project_of

FOLLOW = "mutation($i: FollowProjectInput!) { followProject(input: $i) { following project { id } } }"
UNFOLLOW = "mutation($i: FollowProjectInput!) { unfollowProject(input: $i) { following } }"
PREFS = """mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { __typename
  ... on NotificationPreferencesSuccess { preferences { kind inApp email } }
  ... on ValidationFailed { fields { field message } } } }"""
UNSUBSCRIBE = """mutation($i: UnsubscribeInput!) { unsubscribe(input: $i) { __typename
  ... on UnsubscribeSuccess { kind } ... on ValidationFailed { fields { field } } } }"""
LIST = """query($read: Boolean, $p: ID, $first: Int, $after: String) {
  notifications(isRead: $read, projectId: $p, first: $first, after: $after) {
    edges { node { id kind message payload isRead project { id } } } pageInfo { hasNextPage endCursor } }
  unreadNotificationCount }"""


async def _kinds(person) -> list[str]:
    edges = (await person.agent.data(LIST, {"first": 100}))["notifications"]["edges"]
    return [e["node"]["kind"] for e in edges]


async def _prefs(person) -> list[dict]:
    return (await person.agent.data("{ notificationPreferences { kind inApp email } }"))["notificationPreferences"]


async def _run(owner_id: str, project_gid: str, title: str = "lr sweep"):
    """A Run row made directly, awaiting funding (notifications are driven by hand here; the
    end-to-end path is tests/test_runs.py)."""
    from app.api.ids import decode_id
    from app.runs.models import Run

    return await Run.create(
        project_id=decode_id(project_gid, "Project"), creator_id=owner_id, title=title, status="awaiting_funding",
        estimated_cost_cents=100_000,
        uri="https://example.com/r.git", version="main", commit_sha="0" * 40, gpu_type="l4", gpu_count=1,
        machine_type="g2-standard-4", dryrun_override_param="epochs", dryrun_override_value="1",
    )


async def _fund(services, run, *funders) -> None:
    """Real fundings (wallet, escrow, ledger), small enough that the gap stays open."""
    from app.accounts.models import User
    from app.funding.wallets import grant_credit
    from app.runs.fund import fund_run

    for person in funders:
        await grant_credit(person.user_id, 500, "test patron", granted_by="tests")
        await fund_run(services.lifecycle, await User.get(id=person.user_id), run.id, 500)


async def test_run_status_change_notifies_each_recipient_once_and_emails_those_who_want_it(
    make_person, mailbox: Mailbox, client: GraphQLClient, api: str, services,
) -> None:
    from app.events.models import Event

    owner = await make_person("rowner")
    patron, twice, follower, quiet, muted = [await make_person(p) for p in ("rpat", "rtwice", "rfol", "rquiet",
                                                                           "rmuted")]
    bystander = await make_person("rby")
    pid = await project_of(owner)
    for person in (follower, patron, quiet, muted):  # patron both funds and follows: still one notification
        await person.agent.data(FOLLOW, {"i": {"projectId": pid}})
    await quiet.agent.data(PREFS, {"i": {"preferences": [{"kind": "RUN_STATUS_CHANGED", "email": False}]}})
    await muted.agent.data(PREFS, {"i": {"preferences": [{"kind": "RUN_STATUS_CHANGED", "inApp": False}]}})
    # Here only status changes count; news of each funding is tested below.
    await owner.agent.data(PREFS, {"i": {"preferences": [{"kind": "RUN_FUNDED", "inApp": False, "email": False}]}})
    run = await _run(owner.user_id, pid)
    await _fund(services, run, patron, twice, twice)

    written = await notify_run_status(run.id, "funded", "completed")
    recipients = {owner, patron, twice, follower, quiet}
    assert sorted(str(n.user_id) for n in written) == sorted(p.user_id for p in recipients)
    for person in recipients:
        data = (await person.agent.data(LIST, {"p": pid}))
        [node] = [e["node"] for e in data["notifications"]["edges"]]
        assert node["kind"] == "RUN_STATUS_CHANGED" and not node["isRead"] and node["project"]["id"] == pid
        assert node["payload"]["newStatus"] == "completed" and node["payload"]["oldStatus"] == "funded"
        assert "lr sweep" in node["message"] and data["unreadNotificationCount"] == 1
        assert await Event.filter(stream=f"user:{person.user_id}", kind="notification").count() == 1
    assert await _kinds(muted) == [] and await _kinds(bystander) == []

    wants_email = {owner, patron, twice, follower, muted}  # muted turned off in-app only
    everyone = [p.email for p in (owner, patron, twice, follower, quiet, muted, bystander)]
    assert await mailbox.settle(everyone) == sorted(p.email for p in wants_email)
    mail = mailbox.to(owner.email)[0]
    assert "lr sweep" in mail["Subject"] and "/runs/" in mail.get_content()

    # The link works without login and turns this kind's email off for that user only.
    token = mailbox.unsubscribe_token(mail)
    done = await client.data(UNSUBSCRIBE, {"i": {"token": token}})
    assert done["unsubscribe"] == {"__typename": "UnsubscribeSuccess", "kind": "RUN_STATUS_CHANGED"}
    prefs = (await owner.agent.data("{ notificationPreferences { kind inApp email } }"))["notificationPreferences"]
    assert {"kind": "RUN_STATUS_CHANGED", "inApp": True, "email": False} in prefs
    assert {"kind": "NEW_COMMENT", "inApp": True, "email": True} in prefs

    # "All kinds" from another email's link.
    all_token = mailbox.unsubscribe_token(mailbox.to(follower.email)[0])
    done = await client.data(UNSUBSCRIBE, {"i": {"token": all_token, "allKinds": True}})
    assert done["unsubscribe"]["kind"] is None
    prefs = (await follower.agent.data("{ notificationPreferences { email } }"))["notificationPreferences"]
    assert [p["email"] for p in prefs] == [False] * 4
    bogus = await client.data(UNSUBSCRIBE, {"i": {"token": "not-a-token"}})
    assert bogus["unsubscribe"] == {"__typename": "ValidationFailed", "fields": [{"field": "token"}]}

    # The link itself: GET only shows a button (mail scanners prefetch links); POST unsubscribes.
    link_token = mailbox.unsubscribe_token(mailbox.to(twice.email)[0])
    async with httpx.AsyncClient(base_url=api) as http:
        page = await http.get("/unsubscribe", params={"token": link_token})
        assert page.status_code == 200 and 'method="post"' in page.text
        assert {"kind": "RUN_STATUS_CHANGED", "inApp": True, "email": True} in await _prefs(twice)
        done = await http.post("/unsubscribe", params={"token": link_token})
        assert done.status_code == 200 and "no more emails" in done.text
        assert (await http.post("/unsubscribe", params={"token": "forged"})).status_code == 400
    assert {"kind": "RUN_STATUS_CHANGED", "inApp": True, "email": False} in await _prefs(twice)

    mailbox.messages.clear()
    await notify_run_status(run.id, "completed", "completed")
    assert await mailbox.settle(everyone) == sorted(p.email for p in (patron, muted))
    assert len(await _kinds(owner)) == 2  # in-app is unaffected by email opt-out


async def _messages(person, kind: str) -> list[str]:
    edges = (await person.agent.data(LIST, {"first": 100}))["notifications"]["edges"]
    return [e["node"]["message"] for e in reversed(edges) if e["node"]["kind"] == kind]


async def test_messages_say_who_what_and_how_much_in_dollars(make_person, services) -> None:
    from app.funding import settlement
    from app.runs.models import Run

    owner, patron = await make_person("mowner"), await make_person("mpat")
    pid = await project_of(owner)
    run = await _run(owner.user_id, pid)
    await notify_run_status(run.id, "dryrun", "awaiting_funding")
    await _fund(services, run, patron)
    await settlement.refund_all(run.id, "run cancelled before its funded job started")
    await Run.filter(id=run.id).update(status="cancelled")
    await notify_run_status(run.id, "awaiting_funding", "cancelled")

    # Written in the background (app/notifications/funded.py), with the progress as of the funding.
    assert await eventually(lambda: _messages(owner, "RUN_FUNDED"), bool) == [
        f'{patron.handle} funded $5.00 of "lr sweep" in Disc: $5.00 funded, $995.00 to go.']
    assert await _messages(owner, "RUN_STATUS_CHANGED") == [
        'The dryrun of "lr sweep" in Disc succeeded: the run needs $1,000.00 to start.',
        '"lr sweep" in Disc was cancelled; $5.00 was refunded to its patrons.',
    ]
    assert await _messages(patron, "RUN_FUNDED") == []  # the funder knows already
    assert await _messages(patron, "RUN_STATUS_CHANGED") == [
        '"lr sweep" in Disc was cancelled; $5.00 was refunded to its patrons.']


async def test_each_funding_is_told_once_however_many_notifiers_race(make_person, services) -> None:
    """RUN_FUNDED is written after the funding's commit by whichever notifier claims it first: several
    racing (processes) and the app's own still tell the owner exactly once per funding."""
    import asyncio

    from app.funding.models import Funding
    from app.notifications.funded import notify_pending

    owner = await make_person("nowner")
    patrons = [await make_person(f"npat{i}") for i in range(12)]
    run = await _run(owner.user_id, await project_of(owner))
    await asyncio.gather(_fund(services, run, *patrons[:6]), _fund(services, run, *patrons[6:]),
                         *(notify_pending(batch=2) for _ in range(4)))
    await asyncio.gather(*(notify_pending(batch=2) for _ in range(4)))
    await eventually(lambda: Funding.filter(run_id=run.id, notice_funded_cents__isnull=False).count(), lambda n: n == 0)
    told = await _messages(owner, "RUN_FUNDED")  # committed with the marks' clearing
    # One per funding, each with the run's total right after it: $5, $10, … $60 in some order.
    assert sorted(m.split(" funded $5.00 of")[0] for m in told) == sorted(p.handle for p in patrons)
    assert sorted(int(m.split(": $")[1].split(".00 funded")[0]) for m in told) == [5 * n for n in range(1, 13)]


async def test_mail_written_during_an_smtp_outage_arrives_once_when_it_returns(make_person, settings) -> None:
    from aiosmtpd.controller import Controller

    from app.core.settings import get_settings, override_settings
    from app.embedded.ports import free_port
    from app.notifications.models import OutboxEmail

    owner, follower = await make_person("smtpdown"), await make_person("smtpfol")
    pid = await project_of(owner)
    await follower.agent.data(FOLLOW, {"i": {"projectId": pid}})
    run = await _run(owner.user_id, pid)
    box, port, previous = Mailbox(), free_port(), get_settings()
    override_settings(smtp_host="127.0.0.1", smtp_port=port, email_retry_base_seconds=0.2)  # nothing listens yet
    controller = Controller(box, hostname="127.0.0.1", port=port)
    try:
        written = await notify_run_status(run.id, "dryrun", "awaiting_funding")
        assert sorted(str(n.user_id) for n in written) == sorted([owner.user_id, follower.user_id])
        # The sender tried and failed: the mail waits in the outbox.
        await eventually(OutboxEmail.filter(to_address=owner.email, attempts__gte=1).exists, bool, within=20)
        assert box.messages == []

        controller.start()
        assert await box.settle([owner.email, follower.email]) == sorted([owner.email, follower.email])
        failed = await OutboxEmail.get(to_address=owner.email)
        assert failed.attempts >= 1 and failed.sent_at is not None and "Connection refused" in failed.last_error
    finally:
        override_settings(smtp_host=previous.smtp_host, smtp_port=previous.smtp_port,
                          email_retry_base_seconds=previous.email_retry_base_seconds)
        if controller.loop.is_running():
            controller.stop()


async def test_discussion_notifications_reach_followers_participants_not_author(make_person) -> None:
    owner, follower, author, replier = [await make_person(p) for p in ("nowner", "nfol", "nauth", "nrep")]
    pid = await project_of(owner)
    await follower.web.data(FOLLOW, {"i": {"projectId": pid}})
    again = await follower.web.data(FOLLOW, {"i": {"projectId": pid}})  # idempotent
    assert again["followProject"] == {"following": True, "project": {"id": pid}}

    discussion = await discussion_in(author, pid, "Why cosine?")
    assert await _kinds(owner) == ["NEW_DISCUSSION"] and await _kinds(follower) == ["NEW_DISCUSSION"]
    assert await _kinds(author) == [] and await _kinds(replier) == []

    await comment_on(replier, discussion["id"], "because warmup")
    assert await _kinds(author) == ["NEW_COMMENT"] and await _kinds(replier) == []
    assert await _kinds(follower) == ["NEW_COMMENT", "NEW_DISCUSSION"]
    await comment_on(author, discussion["id"], "thanks")  # the replier took part: notified now
    assert await _kinds(replier) == ["NEW_COMMENT"]
    assert await _kinds(author) == ["NEW_COMMENT"]

    await follower.web.data(UNFOLLOW, {"i": {"projectId": pid}})
    await discussion_in(author, pid, "Another")
    assert await _kinds(follower) == ["NEW_COMMENT", "NEW_COMMENT", "NEW_DISCUSSION"]

    # Platform discussions have no followers: only thread participants hear of replies.
    platform = await discussion_in(author, None, "Platform topic")
    await comment_on(replier, platform["id"], "+1")
    assert (await _kinds(author))[0] == "NEW_COMMENT" and len(await _kinds(owner)) == 4


async def test_read_state_filters_and_pagination(make_person) -> None:
    owner, other, stranger = await make_person("rsowner"), await make_person("rsother"), await make_person("rsx")
    pid, other_pid = await project_of(owner), await project_of(other)
    await owner.agent.data(FOLLOW, {"i": {"projectId": other_pid}})
    for i in range(3):
        await notify_run_status((await _run(owner.user_id, pid, f"mine {i}")).id, "dryrun", "awaiting_funding")
    await notify_run_status((await _run(other.user_id, other_pid, "theirs")).id, "dryrun", "dryrun_failed")

    page = (await owner.agent.data(LIST, {"first": 2}))["notifications"]
    assert [e["node"]["payload"]["runTitle"] for e in page["edges"]] == ["theirs", "mine 2"]
    rest = (await owner.agent.data(LIST, {"first": 2, "after": page["pageInfo"]["endCursor"]}))["notifications"]
    assert [e["node"]["payload"]["runTitle"] for e in rest["edges"]] == ["mine 1", "mine 0"]
    target = page["edges"][1]["node"]["id"]

    err = await stranger.agent.error("mutation($i: MarkNotificationReadInput!) { markNotificationRead(input: $i) { "
                                     "notification { id } } }", {"i": {"id": target}})
    assert err["extensions"]["code"] == "NOT_FOUND"
    hidden = await stranger.agent.data("query($id: ID!) { node(id: $id) { id } }", {"id": target})
    assert hidden["node"] is None
    read = await owner.agent.data("mutation($i: MarkNotificationReadInput!) { markNotificationRead(input: $i) { "
                                  "notification { id isRead } } }", {"i": {"id": target}})
    assert read["markNotificationRead"]["notification"] == {"id": target, "isRead": True}

    unread = (await owner.agent.data(LIST, {"read": False}))
    assert unread["unreadNotificationCount"] == 3 and len(unread["notifications"]["edges"]) == 3
    assert len((await owner.agent.data(LIST, {"read": True}))["notifications"]["edges"]) == 1
    assert len((await owner.agent.data(LIST, {"p": other_pid}))["notifications"]["edges"]) == 1
    marked = await owner.agent.data("mutation($i: MarkAllNotificationsReadInput) { markAllNotificationsRead("
                                    "input: $i) { markedCount } }", {"i": {"projectId": other_pid}})
    assert marked["markAllNotificationsRead"]["markedCount"] == 1
    marked = await owner.agent.data("mutation { markAllNotificationsRead { markedCount } }")
    assert marked["markAllNotificationsRead"]["markedCount"] == 2
    assert (await owner.agent.data(LIST, {}))["unreadNotificationCount"] == 0


async def test_preferences_merge(make_person) -> None:
    person = await make_person("prefs")
    defaults = (await person.agent.data("{ notificationPreferences { kind inApp email } }"))["notificationPreferences"]
    assert defaults == [{"kind": k, "inApp": True, "email": True}
                        for k in ("RUN_STATUS_CHANGED", "NEW_DISCUSSION", "NEW_COMMENT", "RUN_FUNDED")]
    await person.agent.data(PREFS, {"i": {"preferences": [{"kind": "NEW_COMMENT", "email": False}]}})
    merged = await person.web.data(PREFS, {"i": {"preferences": [{"kind": "NEW_COMMENT", "inApp": False},
                                                                 {"kind": "NEW_DISCUSSION", "email": False}]}})
    prefs = {p["kind"]: (p["inApp"], p["email"]) for p in merged["updateNotificationPreferences"]["preferences"]}
    assert prefs == {"NEW_COMMENT": (False, False), "NEW_DISCUSSION": (True, False), "RUN_STATUS_CHANGED": (True, True),
                     "RUN_FUNDED": (True, True)}
    dup = await person.agent.data(PREFS, {"i": {"preferences": [{"kind": "NEW_COMMENT", "email": True},
                                                                {"kind": "NEW_COMMENT", "inApp": True}]}})
    assert dup["updateNotificationPreferences"]["__typename"] == "ValidationFailed"
    after = (await person.agent.data("{ notificationPreferences { kind inApp email } }"))["notificationPreferences"]
    assert {"kind": "NEW_COMMENT", "inApp": False, "email": False} in after
