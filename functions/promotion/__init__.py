"""The promotion control loop: one policy run decides, plans and applies each route's reserved
capacity through the ports (GPU control, route table, journal). Runs in the policy Lambda and in
``tierup dev``'s policy loop; never on the request path."""
