package cn.gridsync.demo.logic

import java.time.Instant
import java.time.YearMonth
import java.time.ZoneOffset
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import uniffi.gridsync_ffi.WorkerPointsRecord

/** China time, the time zone the engine counts months in. */
val CHINA_TIME: ZoneOffset = ZoneOffset.ofHours(8)

/** A worker's points for a month and the counts that earned them. */
data class PointsTotals(
    val validReports: Long,
    val handledOnTheSpot: Long,
    val majorCases: Long,
    val invalidReports: Long,
    val visits: Long,
    val inspections: Long,
    /** What the counts earn under the directory's rules. */
    val computed: Long,
    /** The sum of the leaders' adjustments. */
    val adjusted: Long,
    /** [computed] plus [adjusted]. */
    val points: Long,
)

/** One leader's adjustment, as the screen lists it. */
data class PointsAdjustmentRow(
    val id: String,
    /** Added (positive) or taken away (negative). */
    val points: Int,
    val reason: String,
    /** The leader's user id. */
    val by: String,
    /** The leader's name from the directory, or [by] when the directory does not know her. */
    val byName: String,
    val atMs: Long,
)

/** The points screen. */
data class PointsState(
    val month: YearMonth,
    /** Null before the first load and when this user earns no points ([empty]); zeros for a month with nothing. */
    val totals: PointsTotals? = null,
    val adjustments: List<PointsAdjustmentRow> = emptyList(),
    /** False until the month shown has been read. */
    val loaded: Boolean = false,
    val notice: Notice? = null,
) {
    /** Nothing to show: the directory awards no points, or this user is not a grid worker. */
    val empty: Boolean get() = loaded && totals == null
}

/**
 * 我的积分: the signed-in grid worker's points for one month (China time), the counts
 * behind them and the leaders' adjustments with their reasons. It starts at the
 * current month and re-reads when documents change (a report here, a sync that
 * brought adjustments or a dispatcher's decisions) and when a sync brings a newer
 * directory (other rules, other leaders' names).
 */
class PointsViewModel(private val repo: GridRepository, scope: CoroutineScope, clock: Clock = Clock.System) {
    private val month = MutableStateFlow(YearMonth.from(Instant.ofEpochMilli(clock.nowMs()).atOffset(CHINA_TIME)))
    private val _state = MutableStateFlow(PointsState(month.value))
    val state: StateFlow<PointsState> = _state.asStateFlow()

    init {
        scope.launch {
            combine(month, repo.session, repo.changes, repo.directory) { m, session, _, directory -> Triple(m, session, directory) }
                .collectLatest { (m, session, directory) ->
                    if (session == null) {
                        _state.update { PointsState(it.month) }
                        return@collectLatest
                    }
                    try {
                        // Only grid workers earn points, and only under points rules.
                        val earns = directory != null && directory.awardsPoints && directory.roleOf(session.userId) == GRID_WORKER
                        val totals = if (earns) repo.myPoints(m)?.toTotals() ?: NOTHING else null
                        val names = directory?.record?.users?.associate { it.id to it.name } ?: emptyMap()
                        val adjustments = if (!earns) emptyList() else repo.myPointsAdjustments(m).map {
                            PointsAdjustmentRow(it.id, it.points, it.reason, it.by, names[it.by] ?: it.by, it.atMs)
                        }
                        // Only the answer for the month shown may land.
                        _state.update { s ->
                            if (s.month == m) s.copy(totals = totals, adjustments = adjustments, loaded = true, notice = null) else s
                        }
                    } catch (e: CancellationException) {
                        throw e
                    } catch (e: Exception) {
                        _state.update { it.copy(notice = e.toNotice()) }
                    }
                }
        }
    }

    /** Show the month before. */
    fun previousMonth() = show(month.value.minusMonths(1))

    /** Show the month after. */
    fun nextMonth() = show(month.value.plusMonths(1))

    private fun show(m: YearMonth) {
        _state.value = PointsState(m)
        month.value = m
    }
}

private const val GRID_WORKER = "grid_worker"

/** A month in which she earned nothing and no leader adjusted anything. */
private val NOTHING = PointsTotals(0, 0, 0, 0, 0, 0, 0, 0, 0)

private fun WorkerPointsRecord.toTotals() = PointsTotals(
    validReports.toLong(), handledOnTheSpot.toLong(), majorCases.toLong(), invalidReports.toLong(),
    visits.toLong(), inspections.toLong(), computed, adjusted, points,
)
