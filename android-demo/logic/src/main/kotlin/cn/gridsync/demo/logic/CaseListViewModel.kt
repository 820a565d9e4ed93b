package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

/** One row of the case list. */
data class CaseRow(
    val id: String,
    val title: String,
    val status: String,
    /** The engine's Chinese status label (待受理, 处置中, …). */
    val statusZh: String,
    val photoCount: Int,
    /** Two offline decisions collided; the detail shows how it was resolved. */
    val hasConflict: Boolean,
    /** Changed here and not yet synced. */
    val pending: Boolean,
)

/** The case list. */
data class CaseListState(
    val query: String = "",
    val rows: List<CaseRow> = emptyList(),
    /** False until the first load finished. */
    val loaded: Boolean = false,
    val notice: Notice? = null,
)

/**
 * Cases from the local index, newest first, filtered by search text. Reloads by
 * itself when documents change (a local report, a sync) through the repository's
 * watch, when the query changes, and when pending marks change.
 */
class CaseListViewModel(private val repo: GridRepository, scope: CoroutineScope) {
    private val query = MutableStateFlow("")
    private val _state = MutableStateFlow(CaseListState())
    val state: StateFlow<CaseListState> = _state.asStateFlow()

    init {
        scope.launch {
            combine(query, repo.session, repo.changes, repo.pending) { q, session, _, pending -> Triple(q, session, pending) }
                .collectLatest { (q, session, pending) ->
                    if (session == null) {
                        _state.update { it.copy(rows = emptyList(), loaded = false) }
                        return@collectLatest
                    }
                    try {
                        val rows = repo.listCases(q).map {
                            CaseRow(it.id, it.title, it.status, it.statusZh, it.photoCount.toInt(), it.hasConflict, it.id in pending)
                        }
                        // Only the answer for the current query may land.
                        _state.update { s -> if (s.query == q) s.copy(rows = rows, loaded = true, notice = null) else s }
                    } catch (e: CancellationException) {
                        throw e
                    } catch (e: Exception) {
                        _state.update { it.copy(notice = e.toNotice()) }
                    }
                }
        }
    }

    /** Search text (two-character Chinese words such as 漏水 work). */
    fun onQueryChange(value: String) {
        _state.update { it.copy(query = value) }
        query.value = value
    }
}
