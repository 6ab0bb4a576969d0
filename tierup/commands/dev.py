"""``tierup dev``: the whole gateway on this machine, on embedded defaults.

moto server (127.0.0.1) stands in for DynamoDB; the tables come from the same specs the CDK
stack uses; a demo tenant's key is printed; the gateway serves on 127.0.0.1:8000 with the
simulated provider (or real Bedrock with ``--bedrock``, if AWS credentials are present).

The traffic policy runs in the background on simulated GPUs (``tierup.policy_loop``), on a clock
``--clock-speed`` times faster than real time, so ``tierup load`` can show a route being promoted
and demoted within a minute.
"""

from __future__ import annotations

import os
import signal
import threading

import typer

from functions.gateway.composition import build_gateway

from ..local_stack import (LOCAL_CREDENTIALS, GatewayServer, create_alert_topic, create_key, moto_server,
                           prepare_tables)
from ..policy_loop import DevPolicy, accelerated_config
from .common import ConfigOption, console, err_console, load_runtime

DEMO_TENANT = "demo"


def register(app: typer.Typer) -> None:
    @app.command()
    def dev(config: str = ConfigOption,
            port: int = typer.Option(8000, help="gateway port on 127.0.0.1"),
            moto_port: int = typer.Option(5055, help="moto server port on 127.0.0.1"),
            bedrock: bool = typer.Option(False, "--bedrock", help="call real Bedrock (needs AWS credentials)"),
            plan: str = typer.Option("pro", help="plan of the demo tenant"),
            policy: bool = typer.Option(True, "--policy/--no-policy",
                                        help="run the traffic policy loop (simulated GPUs) in the background"),
            clock_speed: float = typer.Option(1.0, "--clock-speed", min=0.01,
                                              help="policy clock speed: 60 makes a policy minute one second")) -> None:
        """Run the local gateway on moto and the simulated model, and print a demo key."""
        if bedrock:
            import boto3

            if boto3.session.Session().get_credentials() is None:
                err_console.print("[red]--bedrock needs AWS credentials[/red] (env, profile or SSO)")
                raise typer.Exit(2)
        with moto_server(moto_port) as endpoint:
            os.environ["TIERUP_AWS_ENDPOINT"] = endpoint
            if not bedrock:
                for name, value in LOCAL_CREDENTIALS.items():
                    os.environ.setdefault(name, value)
                os.environ["TIERUP_PROVIDER"] = "simulated"
            runtime = load_runtime(config)
            prepare_tables(runtime)
            runtime.environ["TIERUP_BATCH_WORKER"] = "in-process"  # batches run in this process
            for name in ("TIERUP_BATCH_BUCKET", "TIERUP_BATCH_QUEUE_URL"):  # for tierup batches
                os.environ[name] = runtime.environ[name]
            os.environ["TIERUP_ALERT_TOPIC_ARN"] = create_alert_topic(runtime)
            key = create_key(runtime, DEMO_TENANT, plan, label="tierup dev demo")
            runtime.config = accelerated_config(runtime.config, clock_speed)
            dev_policy = DevPolicy(runtime, clock_speed, console.print) if policy else None
            app_ = build_gateway(runtime, extra_recorders=dev_policy.recorders if dev_policy else ())
            with GatewayServer(app_, port=port, log_level="info"):
                if dev_policy:
                    dev_policy.start()
                base = f"http://127.0.0.1:{port}/v1"
                console.print(f"\n[bold]tierup dev[/bold] gateway on {base} "
                              f"({'Bedrock' if bedrock else 'simulated model'}), DynamoDB on moto at {endpoint}")
                console.print(f"demo tenant [bold]{DEMO_TENANT}[/bold] (plan {plan}), API key:")
                print(key, flush=True)
                console.print(f"\n  export OPENAI_BASE_URL={base} OPENAI_API_KEY={key}")
                console.print(f"  export TIERUP_AWS_ENDPOINT={endpoint}   # for tierup keys/usage/status")
                console.print("\nCtrl-C stops.")
                stop = threading.Event()
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                stop.wait()
                if dev_policy:
                    dev_policy.stop()
