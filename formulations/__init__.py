"""Backend-neutral integer programs over the fusion DAG."""
