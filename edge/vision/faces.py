"""The faces of one frame: detect (whole frame or windows), crop by the contract, classify in one batch, track."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge import contract
from edge.config import RunConfig
from edge.sources.frame import Frame
from edge.timing import StageTimer
from edge.vision.blazeface import BlazeFaceDetector
from edge.vision.detect import FaceDetector
from edge.vision.ensemble import ModelEnsemble
from edge.vision.follow import FaceFollower
from edge.vision.geometry import Box
from edge.vision.model import EmotionModel
from edge.vision.motion import MotionGate
from edge.vision.reclassify import ClassifySchedule
from edge.vision.search import SearchSchedule
from edge.vision.track import Tracker, TrackEvent
from edge.vision.yunet import YuNetDetector

DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class TrackedFace:
    box: Box
    track: int
    scores: tuple[float, ...]  # the track's smoothed scores: what its events report
    landmarks: tuple[tuple[int, int], ...] | None = None  # YuNet's five points with --landmarks, frame pixels


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    faces: tuple[TrackedFace, ...]
    raw_scores: np.ndarray  # (faces, classes) each face's latest own probabilities (this frame's when it was classified)
    events: tuple[TrackEvent, ...]
    full_detection: bool

    @property
    def boxes(self) -> list[Box]:
        return [face.box for face in self.faces]


def merge_duplicates(boxes: list[Box]) -> list[Box]:
    """Windows around two nearby tracks can find the same face twice: keep the first of each overlap."""
    kept: list[Box] = []
    for box in boxes:
        if all(box.iou(other) < DUPLICATE_IOU for other in kept):
            kept.append(box)
    return kept


class FacePipeline:
    """One video frame at a time: detection in a window around each tracked face, which costs far
    less than a full detection (and, between windows, following the face by template matching, which
    costs less again), plus a search for new faces where and when `SearchSchedule` says."""

    def __init__(self, model: EmotionModel, detector: FaceDetector, tracker: Tracker, schedule: SearchSchedule, timer: StageTimer,
                 classify: ClassifySchedule | None = None, follower: FaceFollower | None = None):
        self.model, self.detector, self.tracker = model, detector, tracker
        self.schedule, self.timer = schedule, timer
        self.classify = classify or ClassifySchedule()
        self.follower = follower or FaceFollower(1)
        self._followed: set[Box] = set()  # this frame's boxes the follower found (not the detector)
        self.classified = 0  # faces the classifier saw (a face and its mirror count once)

    def restart(self, frame_index: int, timestamp: float) -> list[TrackEvent]:
        """End every track and search the next frame whole (after an outage the scene may differ)."""
        self.schedule.restart()
        self.classify.restart()
        self.follower.forget()
        return self.tracker.finish(frame_index, timestamp)

    def detect(self, gray: np.ndarray) -> tuple[list[Box], bool]:
        """This frame's faces, and whether the whole frame was searched."""
        predicted = self.tracker.predicted()
        self._followed = set()
        area = self.schedule.search_area(gray, list(predicted.values()))
        whole = area is not None and area.area == gray.size
        if whole and not (predicted and getattr(self.detector, "skips_tracked", False)):
            return self.detector.detect(gray), True
        found, lost = [], []
        for track, region in predicted.items():
            followed = self.follower.follow(gray, track, region)
            if followed is not None:
                self._followed.add(followed)
                found.append(followed)
                continue
            boxes = self.detector.detect_in(gray, region.expand(self.detector.window_growth), face_size=region.w)
            if not boxes:
                lost.append(region)
            found += boxes
        if whole:  # for new faces and lost ones: the faces just found around their tracks are left out
            found += self.detector.detect(gray, skip=[box.expand(self.detector.window_growth) for box in found])
        else:
            self.schedule.lost(lost)
            if area is not None:
                found += self.detector.detect_in(gray, area)
        return merge_duplicates(found), whole

    def process(self, frame: Frame) -> FrameResult:
        with self.timer.stage("detect"):
            boxes, full = self.detect(frame.gray)
            take = getattr(self.detector, "take_landmarks", None)  # YuNet's, kept with --landmarks
            landmarks = take() if take is not None else {}
        with self.timer.stage("preprocess"):
            crops = np.stack([contract.crop_face(frame.gray, box) for box in boxes]) if boxes else None
            due = self.classify.due(frame.index, self.tracker.match_ids(boxes), crops)
        with self.timer.stage("infer"):
            scores = np.zeros((len(boxes), len(self.model.labels)), np.float32)
            if due.any():
                scores[due] = self.model.classify(crops[due])
                self.classified += int(due.sum())
        with self.timer.stage("track"):
            events = self.tracker.update(frame.index, frame.timestamp, boxes, scores, fresh=due)
            latest = self.tracker.latest()
            self.follower.forget(self.tracker.live_ids())
            for box, (track, _) in zip(boxes, latest, strict=True):
                if box not in self._followed:  # the detector's box: what the face looks like now
                    self.follower.found(frame.gray, track, box)
            scores = self.classify.classified(frame.index, latest, crops, due, scores, self.tracker.live_ids())
        faces = tuple(
            TrackedFace(box, track, tuple(float(s) for s in smoothed), landmarks.get(box))
            for box, (track, smoothed) in zip(boxes, latest, strict=True)
        )
        return FrameResult(frame, faces, scores, tuple(events), full)


def load_model(config: RunConfig) -> EmotionModel | ModelEnsemble:
    """The model --model names, or the ensemble of the models it lists; --flip-tta, --shift-tta and --balance,
    when given, apply to each model, and the ones not given stay as each model's sidecar says."""
    models = [
        EmotionModel(path, num_threads=config.num_threads, flip_tta=config.flip_tta, shift_tta=config.shift_tta, balance=config.balance)
        for path in config.model_paths()
    ]
    return models[0] if len(models) == 1 else ModelEnsemble(models)


def make_detector(config: RunConfig, stills: bool = False) -> FaceDetector | BlazeFaceDetector | YuNetDetector:
    """The face detector the settings ask for (each offers detect and detect_in); still images are
    searched at their own resolution."""
    if config.detector == "yunet":
        return YuNetDetector(score_threshold=config.yunet_score, min_size=config.min_face,
                             detect_width=None if stills else config.detect_width or None, keep_landmarks=config.landmarks)
    if config.detector == "blazeface":
        return BlazeFaceDetector(
            score_threshold=config.blazeface_score, min_size=config.min_face, tiles=config.blazeface_tiles,
            num_threads=config.num_threads,
        )
    return FaceDetector(
        scale_factor=config.scale_factor,
        min_neighbors=config.min_neighbors,
        min_size=config.min_face,
        detect_width=None if stills else config.detect_width or None,
        cascade_path=config.cascade or None,
    )


def describe_detector(detector: FaceDetector | BlazeFaceDetector | YuNetDetector) -> str:
    """Which detector runs, with its model file and search width: the start and stop records say it."""
    width = getattr(detector, "detect_width", None)
    whole = f"whole frames at {width} px wide" if width else "whole frames at full size"
    if isinstance(detector, YuNetDetector):
        return f"yunet ({detector.path.name} on OpenCV {cv2.__version__}, score >= {detector.score_threshold:g}; {whole})"
    if isinstance(detector, BlazeFaceDetector):
        return f"blazeface ({detector.full.path.name} + {detector.window.path.name} on {detector.interpreter_name}; {detector.tiles}x{detector.tiles} tiles)"
    return f"haar ({detector.cascade_path.name} on OpenCV {cv2.__version__}; {whole})"


def build_pipeline(config: RunConfig, timer: StageTimer) -> FacePipeline:
    tracker = Tracker(iou_threshold=config.iou_threshold, max_missed=config.max_missed, smoothing=config.smoothing)
    motion = MotionGate(config.motion_threshold) if config.motion_threshold else None
    schedule = SearchSchedule(config.detect_every, config.still_detect_every, motion)
    classify = ClassifySchedule(config.classify_every, config.classify_change)
    return FacePipeline(load_model(config), make_detector(config), tracker, schedule, timer, classify, FaceFollower(config.confirm_every))
