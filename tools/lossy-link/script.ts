/**
 * Timed scripts: a list of link states with durations ("30 s of wifi, 5 s blackout,
 * 30 s of 3g"), applied in turn, optionally looping. Step changes are tasks in the
 * shared Scheduler, so virtual time drives them in tests. An on-demand UDP block
 * (HTTP API) survives step changes.
 */
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { Script } from './config.js'
import type { LossyLink } from './link.js'
import type { Scheduler, TaskHandle } from './scheduler.js'

export class ScriptRunner extends EventEmitter {
  private readonly script: Script
  private readonly link: LossyLink
  private readonly scheduler: Scheduler
  private readonly log: Logger
  private index = -1
  private cycles = 0
  private stepStartedMs = 0
  private task: TaskHandle | undefined
  private running = false

  constructor(options: { script: Script; link: LossyLink; scheduler: Scheduler; logger: Logger }) {
    super()
    this.script = options.script
    this.link = options.link
    this.scheduler = options.scheduler
    this.log = options.logger
  }

  start(): void {
    this.running = true
    this.enter(0, this.scheduler.clock.now())
  }

  stop(): void {
    this.running = false
    this.task?.cancel()
    this.task = undefined
    this.emit('stop')
  }

  private enter(index: number, atMs: number): void {
    if (!this.running) return
    if (index >= this.script.steps.length) {
      if (!this.script.loop) {
        this.running = false
        this.log.info('script finished; the last step stays in force')
        this.emit('end')
        return
      }
      index = 0
      this.cycles++
    }
    const step = this.script.steps[index]
    this.index = index
    this.stepStartedMs = atMs
    this.link.applyState(step, { keepDemandBlock: true })
    this.log.info({ step: index, label: step.label, durationMs: step.durationMs }, 'script step')
    this.emit('step', { index, label: step.label, atMs })
    const next = atMs + step.durationMs
    this.task = this.scheduler.at(next, (n: number) => this.enter(index + 1, n), next)
  }

  state() {
    const step = this.script.steps[this.index]
    return {
      running: this.running,
      loop: this.script.loop,
      step: this.index,
      label: step?.label ?? null,
      cycles: this.cycles,
      stepStartedMs: this.stepStartedMs,
      nextStepAtMs: this.running && step ? this.stepStartedMs + step.durationMs : null,
      steps: this.script.steps.map((s) => ({ label: s.label, durationMs: s.durationMs })),
    }
  }
}
