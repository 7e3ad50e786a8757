#!/usr/bin/env bash
# Nightly: the randomised (hypothesis) tests with MSFOPT_HYPOTHESIS_SCALE times their CI example
# counts (default 10), against the same oracles as CI (onnxruntime / tflite-micro on the written
# files, brute force for the optimizer).  About 30-60 minutes on 2 cores at the default scale;
# the two random-graph tests (ONNX 130, TFLite 90 examples in CI) run 2,200 examples of it
# (~0.4 s each: one kept oracle worker per module, one plan and one host build per example).
#
#   bash scripts/nightly.sh            # scale 10
#   MSFOPT_HYPOTHESIS_SCALE=3 bash scripts/nightly.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MSFOPT_HYPOTHESIS_SCALE="${MSFOPT_HYPOTHESIS_SCALE:-10}"
export MSF_CHECK_BOUNDS=1
export MSFOPT_ORDER_FULL="${MSFOPT_ORDER_FULL:-1}"   # order tests: 9-op nets, every backend, compact
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_graph_ops_onnx.py::test_random_graph_runs_like_onnxruntime \
  tests/test_tflite_random.py \
  tests/test_order.py::test_order_dag_equals_brute_force_over_orders_and_partitions \
  tests/test_order_compact.py \
  tests/test_codegen.py::test_random_chain_random_plan_matches_onnxruntime \
  tests/test_exact_answers.py::test_rejected_plans_are_excluded_exactly \
  tests/test_onnx_export.py::test_random_chain_round_trip \
  tests/test_solvers_agree.py \
  tests/test_layout.py::test_cpsat_packs_at_the_brute_force_optimum \
  "$@"
