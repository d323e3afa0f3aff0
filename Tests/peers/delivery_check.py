"""Reconciles what a platform sender saw with what the recording upstream recorded.

The rule under test: *a 2xx to the sender means the upstream has the event*, and hookgate
forwards an event the upstream accepted at most once -- unless the upstream's earlier answer for
that event may never have reached hookgate (it failed, hung, dropped the connection, the client
had gone, or the upstream was killed before finishing the answer).

Upstream records (Tests/peers/upstream.py) carry ``id``, ``status`` (answered; None for a drop),
``fault`` (None, "fail", "drop", "drop_partial", "hang"), ``done`` and ``client_gone``, and are
ordered by ``seq`` (arrival order, continued across restarts with --record-file).

A second 2xx for an id is *explained* when some earlier record for it is a fault (see
``_is_fault``); ``accepted_twice_unexplained_strict`` additionally counts seconds 2xx whose
preceding 2xx was clean (done, client still there) -- a diagnostic only, since the upstream cannot
see whether hookgate gave up a microsecond after its check.

``allow(event_id, records, deliveries)`` (optional) names a fault the scenario injected that
legitimately lets hookgate forget an event (the shared ledger was unavailable while its copies
were handled, the replica that forwarded it was killed): it returns a reason (a short string) or
None. For an event with a reason, a second accept and an attempt after an acknowledgement that was
not answered as a duplicate are counted apart (``allowed``: reason -> events accepted twice,
``allowed_after_ack``: such attempts), not reported as problems. Every other check still applies.
"""


def is_2xx(rec):
    s = rec.get("status")
    return isinstance(s, int) and 200 <= s <= 299 and rec.get("fault") not in ("drop", "drop_partial")


def is_clean_2xx(rec):
    """A 2xx the upstream finished writing to a client that was still there."""
    return is_2xx(rec) and rec.get("fault") is None and rec.get("done") and not rec.get("client_gone")


def reconcile(report, records, id_prefix=None, allow=None):
    """Returns (counts, problems): problems is a list of strings, empty when everything holds."""
    problems = []
    recs = sorted((r for r in records if r.get("id") and (id_prefix is None or r["id"].startswith(id_prefix))),
                  key=lambda r: r["seq"])
    by_id = {}
    for r in recs:
        by_id.setdefault(r["id"], []).append(r)
    deliveries_of = {}
    for d in report.deliveries:
        deliveries_of.setdefault(d.event_id, []).append(d)
    reasons = {}

    def allowed(e):
        if allow is None:
            return None
        if e not in reasons:
            reasons[e] = allow(e, by_id.get(e, []), deliveries_of.get(e, []))
        return reasons[e]
    allowed_twice = {}

    # 1. every event the sender saw acknowledged is in the upstream's record, answered 2xx
    acked = report.acknowledged_ids
    missing = sorted(e for e in acked if not any(is_2xx(r) for r in by_id.get(e, [])))
    if missing:
        problems.append("%d acknowledged events have no 2xx record at the upstream, e.g. %s" % (
            len(missing), "; ".join(_history(e, report, by_id) for e in missing[:5])))

    # 1b. an acknowledgement that was not a duplicate answer relays the upstream's body
    wrong_body = [d for d in report.deliveries
                  if d.acknowledged and not d.duplicate and d.attempts[-1].body != b'{"ok":true}']
    if wrong_body:
        problems.append("%d acknowledgements did not carry the upstream's body, e.g. %r" % (
            len(wrong_body), [(d.event_id, d.attempts[-1].status, d.attempts[-1].body[:80]) for d in wrong_body[:3]]))

    # 2. no event accepted (2xx) by the upstream twice, unless an earlier record for it was not
    #    a clean 2xx (failure / hang / drop / client gone / cut off by a kill)
    doubles, unexplained, strict_unexplained = [], [], []
    for e, rs in by_id.items():
        twos = [r for r in rs if is_2xx(r)]
        if len(twos) < 2:
            continue
        doubles.append(e)
        reason = allowed(e)
        if reason is not None:
            allowed_twice[reason] = allowed_twice.get(reason, 0) + 1
            continue
        for r in twos[1:]:
            earlier = [x for x in rs if x["seq"] < r["seq"]]
            if not any(_is_fault(x) for x in earlier):
                unexplained.append(e)
                break
            # stricter: the 2xx before this one must itself be uncertain (a failure that was
            # answered cannot explain a second forward; only an answer hookgate may have missed can)
            prev_two = [x for x in earlier if is_2xx(x)][-1]
            if is_clean_2xx(prev_two):
                strict_unexplained.append(e)
                break
    if unexplained:
        problems.append("%d events were accepted by the upstream more than once with no failure before, e.g. %s" % (
            len(unexplained), "; ".join(_history(e, report, by_id) for e in sorted(unexplained)[:5])))

    # 2b. once hookgate acknowledged an event, any attempt for it that starts later is answered
    #     as a duplicate (the ledger remembers it; nothing is forwarded again). An attempt that got
    #     no answer at all (the connection was closed under it by a replica that was stopping) is
    #     not an answer: the sender retries it, and double accepts are checked above.
    first_ack = {}
    for d in report.deliveries:
        for a in d.attempts:
            if a.status is not None and 200 <= a.status <= 299:
                end = a.started + a.seconds
                first_ack[d.event_id] = min(first_ack.get(d.event_id, end), end)
    not_dup, allowed_after_ack = [], 0
    for d in report.deliveries:
        ack = first_ack.get(d.event_id)
        for a in d.attempts:
            if a.status is None:
                continue
            if ack is not None and a.started > ack and not (200 <= a.status <= 299 and a.duplicate):
                if allowed(d.event_id) is not None:
                    allowed_after_ack += 1
                else:
                    not_dup.append("%s attempt %d -> %s" % (d.event_id, a.number, a.describe()))
    if not_dup:
        problems.append("%d attempts after an acknowledgement were not answered as duplicates, e.g. %s" % (
            len(not_dup), "; ".join(not_dup[:5])))

    # 3. nothing dead-lettered or refused (the fault rates are chosen so that 6 attempts suffice)
    dead = [d for d in report.deliveries if d.outcome == "dead_letter"]
    if dead:
        problems.append("%d deliveries dead-lettered, e.g. %s" % (len(dead), "; ".join(d.describe() for d in dead[:5])))
    refused = [d for d in report.deliveries if d.outcome == "refused"]
    if refused:
        problems.append("%d deliveries refused (non-retryable), e.g. %s" % (
            len(refused), "; ".join(d.describe() for d in refused[:5])))

    counts = dict(report.summary())
    counts.update({
        "forwarded": len(recs),                                   # requests the upstream received
        "upstream_accepted": sum(1 for rs in by_id.values() if any(is_2xx(r) for r in rs)),
        "upstream_faults": sum(1 for r in recs if _is_fault(r)),
        "accepted_twice": len(doubles),                           # all explained unless reported
        "accepted_twice_unexplained_strict": len(strict_unexplained),
        "allowed": dict(sorted(allowed_twice.items())),
        "allowed_after_ack": allowed_after_ack,
    })
    if strict_unexplained:
        counts["strict_examples"] = [_history(e, report, by_id) for e in sorted(strict_unexplained)[:3]]
    return counts, problems


def _is_fault(rec):
    """The upstream failed, hung, dropped, or was cut off (killed) on this record. A record whose
    client had gone (``client_gone``) without any of these is *not* a fault of the upstream: the
    upstream answered in time by its own configuration -- hookgate gave up early."""
    s = rec.get("status")
    return (rec.get("fault") is not None or not rec.get("done")
            or not (isinstance(s, int) and 200 <= s <= 299))


def _history(event_id, report, by_id):
    ups = ", ".join("#%s %s%s%s%s" % (r["seq"], r.get("status"), "/" + r["fault"] if r.get("fault") else "",
                                      "" if r.get("done") else "/cut", "/gone" if r.get("client_gone") else "")
                    for r in by_id.get(event_id, []))
    ds = " | ".join(d.describe() for d in report.deliveries if d.event_id == event_id)
    return "%s: upstream[%s] sender[%s]" % (event_id, ups, ds)
