from edge.measure import bench


def test_bench_models_reports_each_setting_before_it_runs(monkeypatch):
    ran, heard = [], []
    monkeypatch.setattr(bench, "bench_model", lambda path, threads, xnnpack, flip, count, warmup, faces: ran.append(threads) or {})
    bench.bench_models(["a.tflite", "b.tflite"], [1, 2], 5, 0, 1, lambda what, done, total: heard.append((what, done, total)))
    assert len(ran) == 16 and [done for _, done, _ in heard] == list(range(16)) and {total for *_, total in heard} == {16}
    assert heard[0][0] == "a.tflite, 1 thread(s), XNNPACK" and heard[-1][0] == "b.tflite, 2 thread(s), flip TTA"


def test_bench_pipelines_reports_each_setting(monkeypatch):
    heard = []
    monkeypatch.setattr(bench, "bench_pipeline", lambda config, truth, repeat, ignored: {"fps": 1.0})
    rows = bench.bench_pipelines("sample", None, {"x": {}, "y": {"detect_every": 2}}, "", 1, 5, lambda *args: heard.append(args))
    assert [row["setting"] for row in rows] == ["x", "y"] and heard == [("sample: x", 0, 2), ("sample: y", 1, 2)]
