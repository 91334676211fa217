"""`retailbot faces ...`: enrol consenting members, identify photos, track a video, manage the gallery.

Every command works on a gallery folder (`--db DIR`, on the robot `<data_dir>/faces`) encrypted
with the key from `--key-file` or $RETAILBOT_GALLERY_KEY. Enrolment refuses without a consent
reference, stores no image, and never silently replaces a member: an existing id needs --replace
(another person, or new photos instead of the old ones) or --add (more photos of the same person).
delete and purge ask before erasing (or take --yes). A delete or purge erases the data keys of the
removed members from the key ring beside the folder (`<db>.keys`): a copy of the gallery folder
made before it no longer opens them (the other members still open from it on this robot). purge refuses while the clock reads before 2026 and re-stamps
members stamped by a wrong clock (shown as "unknown (clock)") instead of erasing them.
Exit codes: 0 ok, 1 some input was refused or unreadable (reported, the rest processed) or the
change was declined, 2 unusable setup (no key, wrong key, missing gallery folder, unreadable video),
130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_SKIPPED, EXIT_SETUP = 0, 1, 2


def _print_json(obj) -> None:
    from retail_common.cli_output import print_json
    print_json(obj)


def _error(message: str) -> None:
    print(f'retailbot faces: {message}', file=sys.stderr)


def _store(args, create: bool = False):
    from retail_perception.gallery import GalleryError, GalleryStore, load_key
    db = Path(args.db)
    key = load_key(args.key_file)
    if not db.is_dir():
        if db.exists():
            raise GalleryError(f'--db {db} is not a folder')
        if not create:
            raise GalleryError(f'no gallery folder {db} (check --db; on the robot it is <data_dir>/faces)')
        if not db.parent.is_dir():
            raise GalleryError(f'cannot create the gallery folder {db}: {db.parent} does not exist')
    return GalleryStore(db, key)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number of days, got {text!r}') from None
    if not value >= 0:      # also refuses NaN
        raise argparse.ArgumentTypeError(f'days must be 0 or more, got {text}')
    return value


def _confirm(args, question: str) -> bool:
    """--yes, or a "y" typed at a terminal; never a silent yes for a script."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        _error(f'{question.rstrip("?")}: not done; add --yes to confirm without a terminal')
        return False
    try:
        answer = input(f'{question} [y/N] ')
    except EOFError:
        answer = ''
    return answer.strip().lower() in ('y', 'yes')


def _image_paths(items: list[str]) -> list[Path]:
    """Photos named on the command line; a folder stands for the images in it (name order)."""
    from retail_perception.camera_source import IMAGE_SUFFIXES
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                _error(f'{path}: folder has no images ({", ".join(sorted(IMAGE_SUFFIXES))})')
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def _progress(items: list, description: str):
    """Iterate `items` with a rich progress bar on a terminal, silently otherwise."""
    if not sys.stderr.isatty() or len(items) < 2:
        yield from items
        return
    from rich.progress import track
    yield from track(items, description=description, console=None, transient=True)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--db', required=True, metavar='DIR', help='gallery folder on the robot')
    parser.add_argument('--key-file', metavar='FILE',
                        help='gallery key file (default: $RETAILBOT_GALLERY_KEY)')


def _add_detector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--detector', choices=('auto', 'yunet', 'hog'), default='auto',
                        help='face detector (default auto: YuNet if its wheel is installed, else HOG)')


def _model(args):
    from retail_perception.face_model import DetectorUnavailable, FaceModel
    from retail_perception.gallery import GalleryError
    try:
        return FaceModel(detector=getattr(args, 'detector', 'auto'))
    except DetectorUnavailable as exc:
        raise GalleryError(str(exc)) from None


def register(subparsers) -> None:
    faces = subparsers.add_parser('faces', help='member face gallery: enrol, identify, track, delete',
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = faces.add_subparsers(dest='faces_command', metavar='ACTION', required=True)

    p = commands.add_parser('enroll', help='enrol a consenting member from photos (stores no image)')
    _add_common(p)
    p.add_argument('--id', required=True, dest='customer_id', help='pseudonymous customer id')
    p.add_argument('--name', required=True, help='name to greet the member by')
    p.add_argument('--vip', action='store_true', help='mark the member as a VIP')
    p.add_argument('--consent', required=True, metavar='REF',
                   help='reference of the member\'s recorded face-recognition consent')
    same = p.add_mutually_exclusive_group()
    same.add_argument('--replace', action='store_true',
                      help='the id is enrolled already: replace its name and photos (old ones erased)')
    same.add_argument('--add', action='store_true',
                      help='the id is enrolled already: add these photos of the same person')
    p.add_argument('images', nargs='+', metavar='IMAGE', help='photos showing only the member')
    p.add_argument('--no-walk-in-rows', dest='walk_in', action='store_false',
                   help='store only each photo\'s own encoding, not also its walk-in row (the photo as a '
                   'far camera sees it, which names members from further away)')
    p.add_argument('--json', action='store_true', help='print the result as one JSON line')
    p.set_defaults(func=_enroll)

    p = commands.add_parser('identify', help='name the members in photos')
    _add_common(p)
    p.add_argument('images', nargs='+', metavar='IMAGE', help='photos, or folders of photos')
    p.add_argument('--threshold', type=float, default=0.5, help='max embedding distance (default 0.5)')
    p.add_argument('--margin', type=float, default=0.05, help='best-vs-second margin (default 0.05)')
    p.add_argument('--json', action='store_true', help='one JSON line per image')
    _add_detector(p)
    p.set_defaults(func=_identify)

    p = commands.add_parser('track', help='run the full pipeline on a video')
    _add_common(p)
    p.add_argument('--video', required=True, metavar='FILE', help='video file to run the pipeline on')
    p.add_argument('--max-frames', type=int, default=0, metavar='N', help='stop after N frames')
    p.add_argument('--threshold', type=float, default=0.5, help='max embedding distance (default 0.5)')
    p.add_argument('--json', action='store_true',
                   help='JSON lines: events (with their frame index), then a summary with the frame at '
                        'which each member was first named')
    _add_detector(p)
    p.set_defaults(func=_track)

    p = commands.add_parser('list', help='list enrolled members (no embeddings)')
    _add_common(p)
    p.add_argument('--json', action='store_true', help='one JSON line per member')
    p.set_defaults(func=_list)

    p = commands.add_parser('delete', help='delete a member and every trace of their face')
    _add_common(p)
    p.add_argument('--id', required=True, dest='customer_id', help='customer id to erase')
    p.add_argument('--yes', action='store_true', help='do not ask for confirmation')
    p.add_argument('--json', action='store_true', help='print the result as one JSON line')
    p.set_defaults(func=_delete)

    p = commands.add_parser('purge', help='delete members not seen for DAYS days (retention)')
    _add_common(p)
    p.add_argument('--older-than', required=True, type=_days, metavar='DAYS',
                   help='members whose last visit is older than this many days (0 or more)')
    p.add_argument('--clock-checked', action='store_true',
                   help='the clock was checked: purge even when it reads far past every record '
                        '(refused otherwise: a clock set forward looks like that)')
    p.add_argument('--yes', action='store_true', help='do not ask for confirmation')
    p.add_argument('--json', action='store_true', help='print the result as one JSON line')
    p.set_defaults(func=_purge)

    p = commands.add_parser('keygen', help='create a new random gallery key file (mode 600)')
    p.add_argument('--key-file', required=True, metavar='FILE', help='where to write the new key (must not exist)')
    p.set_defaults(func=_keygen)


def _guard(func):
    """Turn gallery/key problems into one line and exit code 2."""
    def wrapper(args) -> int:
        from retail_perception.gallery import GalleryError
        try:
            return func(args)
        except GalleryError as exc:
            _error(str(exc))
            return EXIT_SETUP
    return wrapper


@_guard
def _enroll(args) -> int:
    if not args.consent.strip():
        _error(f'refusing to enrol {args.customer_id}: --consent REF is required '
               '(the reference of the member\'s separate consent to face recognition)')
        return EXIT_SKIPPED
    store = _store(args, create=True)
    loaded = store.load()                                  # wrong key: fail before the slow part
    existing = loaded.members.get(args.customer_id)
    if existing is not None and not (args.replace or args.add):
        _error(f'{args.customer_id} is already enrolled as {existing.name}; nothing changed. Use --replace '
               'to replace them (old photos erased) or --add to add photos of the same person')
        return EXIT_SKIPPED
    if existing is None and args.add:
        _error(f'{args.customer_id} is not enrolled; nothing to add photos to (enrol without --add)')
        return EXIT_SKIPPED
    from retail_perception.face_model import EnrollmentError, FaceModel, ImageReadError
    model = FaceModel()
    encodings, walk_in, refused = [], [], []
    for path in _progress(_image_paths(args.images), 'Encoding photos'):
        try:
            rows = model.enrollment_encodings(path, args.walk_in)   # the photo's row, then its walk-in row
        except (EnrollmentError, ImageReadError) as exc:
            refused.append(str(exc))
            _error(f'refused: {exc}')
            continue
        encodings.append(rows[0])
        walk_in.extend(rows[1:])
    if refused or not encodings:
        _error(f'{args.customer_id} not enrolled: fix or remove the refused photos')
        return EXIT_SKIPPED
    import numpy as np
    from retail_perception.gallery import GalleryError, check_one_person
    try:
        check_one_person(args.customer_id, np.concatenate(
            [loaded.photo_rows_of(args.customer_id), np.stack(encodings)]) if args.add else np.stack(encodings))
    except GalleryError as exc:
        _error(f'{exc}; nothing changed')
        return EXIT_SKIPPED
    far = np.stack(walk_in) if walk_in else None
    with store.transaction() as gallery:
        if args.add:
            member = gallery.add_photos(args.customer_id, np.stack(encodings), walk_in=far)
        else:
            member = gallery.enroll(args.customer_id, args.name, args.vip, args.consent, np.stack(encodings),
                                    walk_in=far)
    if args.json:
        _print_json({'customer_id': member.customer_id, 'name': member.name, 'vip': member.vip,
                     'photos': len(encodings), 'walk_in_rows': len(walk_in)})
    else:
        done = ('Added' if args.add else 'Replaced' if existing is not None else 'Enrolled')
        print(f'{done} {member.name} ({member.customer_id}{", VIP" if member.vip else ""}) '
              f'from {len(encodings)} photo(s); consent {member.consent_ref}'
              + (f'; {member.embeddings} photo(s) in all' if args.add else ''))
    return EXIT_OK


@_guard
def _identify(args) -> int:
    gallery = _store(args).load()
    from retail_perception.face_model import ImageReadError, load_bgr
    model = _model(args)
    status = EXIT_OK
    paths = _image_paths(args.images)
    if not paths:
        return EXIT_SKIPPED
    for path in _progress(paths, 'Identifying'):
        try:
            boxes, encodings = model.faces_in_photo(load_bgr(path))
        except ImageReadError as exc:
            _error(f'skipped: {exc}')
            status = EXIT_SKIPPED
            continue
        faces = []
        for box, encoding in zip(boxes, encodings):
            match = gallery.search(encoding, args.threshold, args.margin)
            member = gallery.members.get(match.customer_id) if match.customer_id else None
            faces.append({'box': list(box), 'customer_id': member.customer_id if member else None,
                          'name': member.name if member else None, 'vip': bool(member and member.vip),
                          'distance': round(match.distance, 4) if member else None})
        if args.json:
            _print_json({'image': str(path), 'faces': faces})
        else:
            names = ', '.join(f['name'] + (' (VIP)' if f['vip'] else '') if f['name'] else 'unknown'
                              for f in faces) or 'no face'
            print(f'{path}: {names}')
    return status


@_guard
def _track(args) -> int:
    gallery = _store(args).load()
    from retail_perception.camera_source import SourceError, VideoSource
    from retail_perception.face_pipeline import IDENTIFIED, FacePipeline, PipelineConfig
    try:
        video = VideoSource(args.video, loop=False)
        first = video.read()
    except (SourceError, EOFError) as exc:
        _error(f'cannot track: {exc}')
        return EXIT_SETUP
    model = _model(args)
    pipeline = FacePipeline(model, gallery, PipelineConfig(match_threshold=args.threshold))
    identities: dict[str, int] = {}
    first_named: dict[str, int] = {}
    frames, frame = 0, first
    started = time.perf_counter()
    while frame is not None:
        events = pipeline.process(frame)
        frames += 1
        for track in pipeline.tracks.values():
            if track.seen_now and track.identity:
                cid = track.identity.customer_id
                identities[cid] = identities.get(cid, 0) + 1
        for event in events:
            if event.kind == IDENTIFIED and event.customer_id:
                first_named.setdefault(event.customer_id, event.frame)
        _report_events(events, args.json)
        if args.max_frames and frames >= args.max_frames:
            break
        try:
            frame = video.read()
        except EOFError:
            frame = None
        except SourceError as exc:
            _error(f'video stopped after {frames} frames: {exc}')
            frame = None
    elapsed = time.perf_counter() - started
    _report_events(pipeline.flush(), args.json)
    fps = frames / elapsed if elapsed > 0 else 0.0
    if args.json:
        _print_json({'frames': frames, 'fps': round(fps, 2), 'detector': model.detector,
                     'identities': identities, 'first_named_frame': first_named})
    else:
        named = ', '.join(f'{cid}: {n} frames, first named at frame {first_named.get(cid, "?")}'
                          for cid, n in identities.items()) or 'nobody identified'
        print(f'{frames} frames at {fps:.1f} frames/s ({model.detector} detector); {named}')
    return EXIT_OK


def _report_events(events, as_json: bool) -> None:
    for event in events:
        who = event.customer_id or None
        frame_index = event.frame
        if as_json:
            _print_json({'frame': frame_index, 'event': event.kind, 'track_id': event.track_id,
                         'customer_id': who, 'distance_m': round(event.distance_m, 2)})
        else:
            print(f'frame {frame_index}: track {event.track_id} {event.kind}'
                  + (f' as {event.name} ({who})' if who else '') + f', {event.distance_m:.1f} m')


@_guard
def _list(args) -> int:
    gallery = _store(args).load()
    for member in sorted(gallery.members.values(), key=lambda m: m.customer_id):
        record = {'customer_id': member.customer_id, 'name': member.name, 'vip': member.vip,
                  'consent_ref': member.consent_ref, 'photos': member.embeddings,
                  'walk_in_rows': member.walk_in_rows,
                  'enrolled_at': _iso(member.enrolled_at), 'last_seen': _iso(member.last_seen)}
        if args.json:
            _print_json(record)
        else:
            vip = 'VIP' if member.vip else '-'
            print(f'{member.customer_id}\t{member.name}\t{vip}\tconsent {member.consent_ref}\t'
                  f'last seen {record["last_seen"]}')
    if not args.json:
        print(f'{len(gallery)} member(s)')
    return EXIT_OK


def _iso(timestamp: float) -> str:
    """UTC time, or 'unknown (clock)' for a stamp outside the plausible window (see gallery)."""
    from retail_perception.gallery import stamp_plausible
    if not stamp_plausible(timestamp, time.time()):
        return 'unknown (clock)'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))


@_guard
def _delete(args) -> int:
    store = _store(args)
    member = store.load().members.get(args.customer_id)
    deleted = False
    if member is not None:
        if not _confirm(args, f'Erase {member.name} ({args.customer_id}) and all their face data?'):
            return EXIT_SKIPPED
        with store.transaction() as gallery:
            deleted = gallery.delete(args.customer_id)
    if args.json:
        _print_json({'customer_id': args.customer_id, 'deleted': deleted})
    elif deleted:
        print(f'Deleted {args.customer_id} and all their face data')
    if not deleted:
        _error(f'no member {args.customer_id!r}')
        return EXIT_SKIPPED
    return EXIT_OK


@_guard
def _purge(args) -> int:
    """Retention purge. Refuses on a clock before the gallery's plausible window (exit 2); members
    stamped by a wrong clock (1970, or in the future) are re-stamped now, never erased for it."""
    from retail_perception.gallery import GalleryClockError
    store = _store(args)
    now = time.time()
    gallery = store.load()
    flagged = gallery.implausible(now)
    stale = gallery.purge(args.older_than, now=now, clock_checked=args.clock_checked)   # a preview; raises on a wrong clock
    if stale and not _confirm(args, f'Erase {len(stale)} of {len(gallery) + len(stale)} member(s) not seen '
                                    f'for {args.older_than:g} days?'):
        return EXIT_SKIPPED
    purged: list[str] = []
    if stale or flagged:
        try:
            with store.transaction() as gallery:
                flagged = gallery.implausible(now)
                purged = gallery.purge(args.older_than, now=now, clock_checked=args.clock_checked)
        except GalleryClockError as exc:
            _error(str(exc))
            return EXIT_SETUP
    if args.json:
        _print_json({'purged': purged, 'restamped': flagged})
    else:
        print(f'Purged {len(purged)} member(s) not seen for {args.older_than:g} days'
              + (': ' + ', '.join(purged) if purged else ''))
        if flagged:
            print(f'{len(flagged)} member(s) had time stamps from a wrong clock ({", ".join(flagged)}): '
                  're-stamped now, so their retention counts from today')
    return EXIT_OK


def _keygen(args) -> int:
    import os
    from retail_perception.gallery import new_key_text
    path = Path(args.key_file)
    try:
        if path.is_dir() or not path.name:
            _error(f'{path} is a folder: give the key file\'s path, e.g. {path / "gallery.key"}')
            return EXIT_SETUP
        if path.exists():
            _error(f'{path} exists; refusing to overwrite a key (members would become unreadable)')
            return EXIT_SETUP
        blocking = next((parent for parent in path.parents if parent.exists()), None)
        if blocking is not None and not blocking.is_dir():
            _error(f'{path}: {blocking} is a file, not a folder: the key cannot be written there')
            return EXIT_SETUP
    except OSError as exc:                  # a name too long, a folder it may not look into
        _error(f'{path}: cannot use this path for the key file ({exc.strerror or exc})')
        return EXIT_SETUP
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        _error(f'{path}: cannot create the key file ({exc.strerror or exc})')
        return EXIT_SETUP
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(new_key_text() + '\n')
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:                  # a full disk: no half-written key is left to refuse the retry
        path.unlink(missing_ok=True)
        _error(f'{path}: cannot write the key file ({exc.strerror or exc}); nothing written')
        return EXIT_SETUP
    print(f'Wrote a new gallery key to {path}; keep it off the gallery disk\'s backups')
    return EXIT_OK
