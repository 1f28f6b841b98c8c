// Two videos driven by one transport: play/pause and seek act on both; the lip-synced video (the one with
// the new audio) is the leader and the original follows it, re-aligned when it drifts.

const DRIFT_S = 0.08;

export class Lockstep {
  constructor(leader, follower, { playButton, seek, clock }) {
    this.leader = leader;
    this.follower = follower;
    this.playButton = playButton;
    this.seek = seek;
    this.clock = clock;
    playButton.addEventListener("click", () => this.toggle());
    seek.addEventListener("input", () => this.seekTo(Number(seek.value)));
    leader.addEventListener("loadedmetadata", () => this.render());
    leader.addEventListener("timeupdate", () => {
      this.follow();
      this.render();
    });
    leader.addEventListener("play", () => this.render());
    leader.addEventListener("pause", () => this.render());
    leader.addEventListener("ended", () => {
      follower.pause();
      this.render();
    });
  }

  followerTime(t) {
    const d = this.follower.duration;
    return Number.isFinite(d) ? Math.min(t, d) : t;
  }

  follow() {
    const target = this.followerTime(this.leader.currentTime);
    if (Math.abs(this.follower.currentTime - target) > DRIFT_S) this.follower.currentTime = target;
    if (this.leader.paused !== this.follower.paused && target < (this.follower.duration || Infinity)) {
      if (this.leader.paused) this.follower.pause();
      else this.follower.play().catch(() => {});
    }
  }

  async toggle() {
    if (this.leader.paused) {
      if (this.leader.ended) this.seekTo(0);
      await Promise.allSettled([this.leader.play(), this.follower.play()]);
    } else {
      this.leader.pause();
      this.follower.pause();
    }
    this.render();
  }

  seekTo(t) {
    this.leader.currentTime = t;
    this.follower.currentTime = this.followerTime(t);
    this.render();
  }

  render() {
    const d = this.leader.duration;
    if (Number.isFinite(d)) this.seek.max = String(d);
    if (document.activeElement !== this.seek) this.seek.value = String(this.leader.currentTime);
    this.playButton.textContent = this.leader.paused ? "Play both" : "Pause both";
    this.clock.textContent = `${this.leader.currentTime.toFixed(2)} / ${Number.isFinite(d) ? d.toFixed(2) : "?"} s`;
  }
}
