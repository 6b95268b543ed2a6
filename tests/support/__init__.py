"""The test harness: helpers every test area (and bench/) imports. pytest puts tests/ on
sys.path (pyproject `pythonpath`), so a test writes `from support.harness import running`."""
