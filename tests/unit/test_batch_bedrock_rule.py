from functions.core.batch_bedrock import bedrock_due, handoff_after_s

DAY, MARGIN = 86_400, 21_600


def due(**overrides):
    args = dict(has_batch_price=True, lines=150, min_records=100, promoted=False, now=1_000.0, created_at=0.0,
                window_s=DAY, deadline_margin_s=MARGIN)
    args.update(overrides)
    return bedrock_due(**args)


def test_an_unpromoted_route_hands_a_large_enough_batch_to_bedrock_at_once():
    assert due()


def test_no_batch_price_or_too_few_records_never_goes_to_bedrock():
    assert not due(has_batch_price=False)
    assert not due(lines=99)


def test_a_promoted_route_uses_reserved_until_the_handoff_then_bedrock():
    handoff = handoff_after_s(DAY, MARGIN)
    assert handoff == (DAY - MARGIN) / 2
    assert not due(promoted=True, now=handoff - 1)
    assert due(promoted=True, now=handoff)


def test_past_the_deadline_margin_no_job_is_started():
    assert not due(now=DAY - MARGIN)
