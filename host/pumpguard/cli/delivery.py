"""The commands that change what a channel delivers: ``start``, ``titrate``, ``stop``
(a taper drug's plan printed, or ``--emergency``), ``handover``, and ``patient`` (the
weight every start runs at). Each prints the pump's decision, or with ``--json`` the
API's answer (jsonout.py)."""

from pumpguard._board.protocol.text import duration

from .jsonout import print_json
from .options import Concentration, channel, channel_number, command_parser, on_pump, quantity

_JSON_HELP = "the pump's decision as one JSON object (quantities as exact decimal strings)"


def argparse_start():
    p = command_parser("start", "Start DRUG at DOSE UNIT on --channel.")
    p.add_argument("drug")
    p.add_argument("dose", type=quantity("dose"))
    p.add_argument("unit", help="dose unit, e.g. mcg/min, mcg/kg/min, units/min")
    p.add_argument("--weight", type=quantity("weight"), metavar="KG")
    p.add_argument(
        "--concentration",
        nargs=2,
        action=Concentration,
        metavar=("VALUE", "UNIT"),
        help="e.g. 16 mcg/mL",
    )
    p.add_argument("--volume", type=quantity("volume"), metavar="ML", help="syringe volume")
    p.add_argument("--override", action="store_true", help="accept a soft-limit excess (logged)")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    return p


def do_start(pump, args, out):
    d = pump.start(
        channel(pump, args),
        args.drug,
        args.dose,
        args.unit,
        weight_kg=args.weight,
        concentration=args.concentration,
        volume_ml=args.volume,
        override=args.override,
    )
    if args.json:
        print_json(d, out)
        return
    print(
        f"channel {d.channel}: {args.drug} running at {d.dose} {d.dose_unit} = {d.rate_ml_h} mL/h",
        file=out,
    )


def argparse_titrate():
    p = command_parser("titrate", "Change the running dose on --channel.")
    p.add_argument("dose", type=quantity("dose"))
    p.add_argument("unit")
    p.add_argument("--override", action="store_true", help="accept a soft-limit excess (logged)")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    return p


def do_titrate(pump, args, out):
    d = pump.titrate(channel(pump, args), args.dose, args.unit, override=args.override)
    if args.json:
        print_json(d, out)
        return
    print(f"channel {d.channel}: now {d.dose} {d.dose_unit} = {d.rate_ml_h} mL/h", file=out)


def argparse_stop():
    p = command_parser("stop", "Stop --channel (taper drugs taper; --emergency stops at once).")
    p.add_argument(
        "--emergency",
        metavar="REASON",
        choices=("occlusion", "air_in_line", "extravasation", "clinician"),
        help="occlusion, air_in_line, extravasation or clinician",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="the answer as one JSON object: the channel, its dose unit and the taper plan "
        "(every step: at_ms, in_s, dose; empty when it stopped at once); --emergency: "
        '{"channel": N, "emergency": REASON}',
    )
    return p


def do_stop(pump, args, out):
    ch = channel(pump, args)
    if args.emergency:
        pump.emergency_stop(ch, args.emergency)
        if args.json:
            print_json({"channel": ch, "emergency": args.emergency}, out)
        else:
            print(f"channel {ch}: emergency stop ({args.emergency})", file=out)
        return
    r = pump.stop(ch)
    if args.json:
        print_json(r, out)
        return
    if not r.plan:
        print(f"channel {r.channel}: stopped", file=out)
        return
    print(f"channel {r.channel}: tapering, {len(r.plan)} steps:", file=out)
    for i, step in enumerate(r.plan, 1):
        print(
            f"  step {i:2d}  in {duration(int(step.in_s * 1000)):<14} {step.dose} {r.dose_unit}",
            file=out,
        )


def argparse_handover():
    p = command_parser(
        "handover",
        "Move the program running on channel FROM to the new syringe on channel TO: TO "
        "starts at FROM's dose (and taper), FROM stops without a taper, in one decision. "
        "--drug, --concentration and --volume are the new syringe's label; the pump "
        "refuses a label that is not FROM's drug and concentration.",
    )
    p.add_argument("from_ch", type=channel_number, metavar="FROM")
    p.add_argument("to_ch", type=channel_number, metavar="TO")
    p.add_argument("--drug", required=True, help="the new syringe's drug")
    p.add_argument(
        "--concentration",
        nargs=2,
        action=Concentration,
        required=True,
        metavar=("VALUE", "UNIT"),
        help="the new syringe's, e.g. 16 mcg/mL",
    )
    p.add_argument(
        "--volume", type=quantity("volume"), required=True, metavar="ML", help="its volume"
    )
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    return p


def do_handover(pump, args, out):
    h = pump.handover(
        on_pump(pump, args.from_ch, "FROM"),
        on_pump(pump, args.to_ch, "TO"),
        drug=args.drug,
        concentration=args.concentration,
        volume_ml=args.volume,
    )
    if args.json:
        print_json(h, out)
        return
    print(
        f"channel {h.channel}: {args.drug} {h.state} at {h.dose} {h.dose_unit} = "
        f"{h.rate_ml_h} mL/h{' (its taper goes on)' if h.state == 'tapering' else ''}; "
        f"channel {h.from_channel}: stopped (handed over)",
        file=out,
    )


def argparse_patient():
    p = command_parser(
        "patient",
        "The patient every channel delivers to: its weight, one for all channels. Every "
        "start's --weight must be it (refused otherwise, naming both), and a start "
        "without one runs at it; the first start that gives a weight sets it. Another "
        "weight, or --clear, only while no dose that went through the weight runs. "
        "Without options, shows it.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--weight", type=quantity("weight"), metavar="KG", help="set it")
    which.add_argument(
        "--clear", action="store_true", help="no patient known: the next start sets it"
    )
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    return p


def do_patient(pump, args, out):
    p = pump.patient(args.weight, clear=args.clear)
    if args.json:
        print_json(p, out)
        return
    if p.weight_kg is None:
        print("patient: no weight known (the next start that gives --weight sets it)", file=out)
    else:
        print(f"patient: {p.weight_kg} kg", file=out)
