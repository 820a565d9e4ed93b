package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.onStart
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import uniffi.gridsync_ffi.CaseRecord
import uniffi.gridsync_ffi.NoteRecord
import uniffi.gridsync_ffi.PhotoRefRecord

/** One step of a case's timeline. */
data class TimelineRow(
    /** The engine's Chinese label of the step (发现上报, 受理, 派遣, …). */
    val labelZh: String,
    val action: String,
    /** The actor's role, e.g. `grid_worker`; see [roleZh]. */
    val role: String,
    val atMs: Long,
    /** `applied`, `conflict` (a concurrent decision that lost) or `refused`. */
    val outcome: String,
) {
    val roleZh: String get() = ROLE_LABELS[role] ?: role
}

private val ROLE_LABELS = mapOf(
    "grid_worker" to "网格员",
    "community_dispatcher" to "社区调度员",
    "town_dispatcher" to "街道调度员",
    "district_dispatcher" to "区调度员",
    "city_dispatcher" to "市调度员",
    "department_handler" to "部门处置员",
    "admin" to "管理员",
)

/** A case as the detail screen shows it. */
data class CaseDetail(
    val id: String,
    val title: String,
    val description: String,
    val status: String,
    val statusZh: String,
    /** Photo references (hash, thumbnail hash when the engine has one). */
    val photos: List<PhotoRefRecord>,
    /** Notes with who wrote them and when. */
    val notes: List<NoteRecord>,
    val timeline: List<TimelineRow>,
)

/** The detail screen's state. */
data class CaseDetailState(val case: CaseDetail? = null, val notice: Notice? = null, val pending: Boolean = false)

/** One case and its timeline; reloads when that case changes (here or through a sync). */
class CaseDetailViewModel(
    private val repo: GridRepository,
    scope: CoroutineScope,
    private val caseId: String,
) {
    private val _state = MutableStateFlow(CaseDetailState())
    val state: StateFlow<CaseDetailState> = _state.asStateFlow()

    init {
        scope.launch {
            repo.changes
                .filter { caseId in it.docIds }
                .onStart { emit(repo.changes.value) }
                .collectLatest { load() }
        }
        scope.launch {
            repo.pending.collect { p -> _state.update { it.copy(pending = caseId in p) } }
        }
    }

    private suspend fun load() {
        try {
            val case = repo.getCase(caseId).toDetail()
            _state.update { it.copy(case = case, notice = null) }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            // A case that left this device (purged) shows "not found" instead of stale data.
            _state.update { it.copy(case = null, notice = e.toNotice()) }
        }
    }

    /** A stored photo's bytes, or null while it is not on this device. */
    suspend fun photoBytes(hash: String): ByteArray? = try {
        repo.photoBytes(hash)
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        null
    }
}

private fun CaseRecord.toDetail() = CaseDetail(
    id = id,
    title = title,
    description = description,
    status = status,
    statusZh = statusZh,
    photos = photos,
    notes = notes,
    timeline = timeline.map { TimelineRow(it.labelZh, it.action, it.role, it.atMs, it.outcome) },
)
