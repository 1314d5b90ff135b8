"""`policystack ros`: run the ROS 2 node graph without `ros2 launch`, check launch files, convert bags.

    policystack ros launch launch/sim.launch.py checkpoint:=runs/bc/checkpoints/last/pretrained n_episodes:=20
    policystack ros launch launch/real_robot.launch.py checkpoint:=... record:=true --dry-run
    policystack ros check launch/*.launch.py
    policystack ros bag2hdf5 bags/run_001 data/robot.hdf5 --params launch/real_robot.yaml --rate 10

`launch` evaluates the same standard launch file and params YAML that `ros2 launch` uses and starts
each node with the same `--ros-args` (needs rclpy: the `ros` extra or a sourced ROS 2 install).
"""

NAME = "ros"
HELP = "ROS 2: run a launch file's node graph without `ros2 launch`, check launch files, rosbag2 -> HDF5"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="ros_cmd", metavar="<command>")
    la = sub.add_parser("launch", help="run the nodes of a launch file (name:=value arguments)")
    la.add_argument("file", help="a launch/*.launch.py file")
    la.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    la.add_argument("--dry-run", action="store_true", help="print the node commands and exit")
    ch = sub.add_parser("check", help="check launch files: executables, params files, node sections")
    ch.add_argument("files", nargs="+")
    bg = sub.add_parser("bag2hdf5", help="convert a rosbag2 into HDF5 training episodes")
    bg.add_argument("bag", help="rosbag2 directory (MCAP or sqlite3)")
    bg.add_argument("out", help="HDF5 file to write (episodes are appended)")
    bg.add_argument("--params", help="params YAML whose <node>.inputs map gives the topic <-> key map")
    bg.add_argument("--node", default="policy_node", help="the section of --params to read (default policy_node)")
    bg.add_argument("--map", action="append", default=[], metavar="KEY=TOPIC[:TYPE]",
                    help="extra/overriding input, e.g. observation.state=/joint_states:JointState")
    bg.add_argument("--rate", type=float, required=True, help="resampling rate in Hz (the control rate)")
    bg.add_argument("--action-topic", default="/policy/action")
    bg.add_argument("--events-topic", default="/sim/events", help="episode_start events split episodes")
    bg.add_argument("--task", default=None, help="instruction when the bag has no task topic")
    bg.add_argument("--keys", default=None, help="comma-separated observation keys to keep (default: every "
                    "mapped topic the bag has)")
    bg.add_argument("--phase", type=float, default=0.1,
                    help="grid offset after each observation, as a fraction of a period (default 0.1)")


def _parse_launch_args(items):
    from policystack.errors import ConfigError
    out = {}
    for it in items:
        if ":=" not in it:
            raise ConfigError(f"launch argument {it!r} must look like name:=value")
        k, v = it.split(":=", 1)
        out[k] = v
    return out


def run(args) -> int:
    from policystack.ros import minilaunch
    if args.ros_cmd == "launch":
        graph = minilaunch.resolve(args.file, _parse_launch_args(args.arguments))
        if args.dry_run:
            import tempfile
            from pathlib import Path
            with tempfile.TemporaryDirectory() as tmp:
                for n in graph.nodes:
                    print(" ".join(minilaunch.command(n, Path(tmp))))
            return 0
        return minilaunch.run_graph(graph)
    if args.ros_cmd == "check":
        bad = 0
        for f in args.files:
            graph, problems = minilaunch.check_launch(f)
            status = "OK" if not problems else "FAIL"
            print(f"{status} {f}: " + ", ".join(f"{n.name}[{n.package}/{n.executable}]" for n in graph.nodes))
            for pr in problems:
                print(f"  - {pr}")
            bad += bool(problems)
        return 1 if bad else 0
    if args.ros_cmd == "bag2hdf5":
        from policystack.errors import ConfigError
        from policystack.ros.bag import convert_bag
        from policystack.ros.params import by_prefix, load_params
        from policystack.ros.topics import parse_inputs
        flat = by_prefix(load_params(args.params, args.node), "inputs") if args.params else {}
        for i, item in enumerate(args.map):
            if "=" not in item:
                raise ConfigError(f"--map {item!r} must look like KEY=TOPIC[:TYPE]")
            key, rest = item.split("=", 1)
            topic, _, typ = rest.partition(":")
            name = f"map{i}"
            replaced = {k.split(".", 1)[0] for k, v in flat.items() if k.endswith(".key") and v == key}
            flat = {k: v for k, v in flat.items() if k.split(".", 1)[0] not in replaced}
            flat.update({f"{name}.key": key, f"{name}.topic": topic, **({f"{name}.type": typ} if typ else {})})
        if not flat:
            raise ConfigError("give the topic <-> key map with --params (a policy_node params YAML) or --map")
        inputs = parse_inputs(flat)
        path, n_eps, n_steps = convert_bag(args.bag, args.out, inputs, args.rate, args.action_topic,
                                           args.events_topic or None, args.task, args.phase,
                                           [k.strip() for k in args.keys.split(",")] if args.keys else None)
        print(f"{args.bag} -> {path}: {n_eps} episodes, {n_steps} steps at {args.rate} Hz")
        return 0
    print("usage: policystack ros {launch,check,bag2hdf5} ... (see --help)")
    return 2
