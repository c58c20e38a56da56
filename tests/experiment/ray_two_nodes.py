"""`python ray_two_nodes.py ROOT`: a two-node Ray cluster on this machine, every port on 127.0.0.1.

Each node is a raylet of its own (1 CPU, its own temp dir under ROOT), as on two machines; a cell's
Ray worker runs on one of them. Ray's own multi-node test harness (`ray.cluster_utils.Cluster`) starts
them: `ray start --address` refuses a second node while Ray keeps to loopback
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, "Multi-node Ray clusters are not supported"), and without that
setting both Ray and `ray start` replace 127.0.0.1 by the machine's external address. Prints the GCS
address as one JSON line, then runs until SIGTERM, when it stops both nodes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: it reads it once
os.environ["RAY_TMPDIR"] = sys.argv[1]  # Ray records "the current cluster" here, not in /tmp/ray


def main() -> None:
    from ray.cluster_utils import Cluster

    root = sys.argv[1]
    os.makedirs(os.path.join(root, "ray"), exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    common = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    head = {**common, "include_dashboard": False, "temp_dir": f"{root}/head"}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        cluster.add_node(**common, temp_dir=f"{root}/node2")
        cluster.wait_for_nodes()
        print(json.dumps({"address": cluster.address}), flush=True)
        while True:
            time.sleep(1)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
