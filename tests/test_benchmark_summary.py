"""The benchmark's table of targets judges the measured rates, not the ratios it rounds for printing."""

from benchmarks.run import summarize


def verdicts(results):
    return {row["target"]: (row["measured"], row["met"]) for row in summarize(results)}


def test_a_rate_just_below_the_peer_is_a_miss_though_its_ratio_prints_as_one():
    results = {
        "send_sms": {"rate_per_s": 2856.3, "ratio_to_bullmq_peer": 0.999, "ratio_to_naive_django_rq": 40.0},
        "bullmq": {"rate_per_s": 2860.2},
        "naive": {"rate_per_s": 71.42},  # 40 x 71.42 = 2,856.8: a hair above ours
    }
    table = verdicts(results)
    assert table["SMS >= BullMQ peer"] == ("0.999x (2,856/s, peer 2,860/s)", False)
    assert table["SMS >= 40x naive django-rq"] == ("40.0x", False)

    results["bullmq"]["rate_per_s"], results["naive"]["rate_per_s"] = 2856.3, 71.4
    table = verdicts(results)
    assert table["SMS >= BullMQ peer"][1] is True
    assert table["SMS >= 40x naive django-rq"][1] is True


def test_a_target_whose_scenario_did_not_run_is_neither_met_nor_missed():
    table = verdicts({"send_sms": {"rate_per_s": 2500.0}})
    assert table["SMS >= 2,000/s, 2 workers"] == ("2,500/s", True)
    assert table["SMS >= BullMQ peer"] == ("needs send_sms and bullmq", None)
