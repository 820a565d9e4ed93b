package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import uniffi.gridsync_ffi.GridsyncException
import uniffi.gridsync_ffi.NewCaseRecord

/** A photo stored by the engine and waiting to be attached to the report. */
data class AttachedPhoto(val hash: String, val thumb: String, val width: Int, val height: Int)

/** The report form. */
data class ReportState(
    /** The categories of the directory this device holds; they follow a newer one a sync brings. */
    val categories: List<Category> = emptyList(),
    val title: String = "",
    val description: String = "",
    /** A code of [categories] (the first until one is chosen), or empty when there are none. */
    val category: String = "",
    val subcategory: String? = null,
    val severity: Severity = Severity.NORMAL,
    val address: String = "",
    /** The last fix, attached as the case's location. Never logged. */
    val location: GeoPoint? = null,
    val photos: List<AttachedPhoto> = emptyList(),
    val busy: Boolean = false,
    val notice: Notice? = null,
    /** The id of the case this form last reported. */
    val reportedCaseId: String? = null,
) {
    /** The same form over [newCategories]: the choice kept while the directory still has it. */
    fun withCategories(newCategories: List<Category>): ReportState {
        val chosen = newCategories.firstOrNull { it.code == category } ?: newCategories.firstOrNull()
        val sub = subcategory?.takeIf { code -> chosen?.subcategories?.any { it.code == code } == true }
        return copy(categories = newCategories, category = chosen?.code ?: "", subcategory = sub)
    }
}

/**
 * Report a case with photos from the camera. The categories are the directory's,
 * replaced when a sync brings a newer directory (a category renamed or added on the
 * server shows at once).
 */
class ReportViewModel(private val repo: GridRepository, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(ReportState().withCategories(repo.directory.value?.record?.taxonomy().orEmpty()))
    val state: StateFlow<ReportState> = _state.asStateFlow()

    init {
        scope.launch {
            repo.directory.collect { d ->
                val categories = d?.record?.taxonomy().orEmpty()
                _state.update { if (it.categories == categories) it else it.withCategories(categories) }
            }
        }
    }

    fun onTitleChange(value: String) = _state.update { it.copy(title = value, notice = null) }
    fun onDescriptionChange(value: String) = _state.update { it.copy(description = value, notice = null) }
    fun onAddressChange(value: String) = _state.update { it.copy(address = value, notice = null) }
    fun onSeverityChange(value: Severity) = _state.update { it.copy(severity = value) }

    fun onCategoryChange(code: String) = _state.update {
        if (it.category == code) it else it.copy(category = code, subcategory = null, notice = null)
    }

    fun onSubcategoryChange(code: String?) = _state.update { it.copy(subcategory = code) }

    /** The platform's latest fix; used as the case's location. */
    fun onLocation(point: GeoPoint) = _state.update { it.copy(location = point) }

    /**
     * Store a photo from the camera through the engine's pipeline (metadata stripped,
     * display size and thumbnail made). The caller may delete its file afterwards.
     */
    fun attachPhoto(bytes: ByteArray, fileName: String?): Job = scope.launch {
        _state.update { it.copy(busy = true, notice = null) }
        try {
            val photo = repo.ingestPhoto(bytes, fileName)
            val attached = AttachedPhoto(photo.hash, photo.thumb, photo.width.toInt(), photo.height.toInt())
            _state.update { s -> s.copy(busy = false, photos = s.photos.filterNot { it.hash == attached.hash } + attached) }
        } catch (e: CancellationException) {
            throw e
        } catch (e: GridsyncException.InvalidInput) {
            _state.update { it.copy(busy = false, notice = Notice(UiMessage.PHOTO_REJECTED, e.reason)) }
        } catch (e: Exception) {
            _state.update { it.copy(busy = false, notice = e.toNotice()) }
        }
    }

    fun removePhoto(hash: String) = _state.update { s -> s.copy(photos = s.photos.filterNot { it.hash == hash }) }

    /** A stored photo's bytes (the thumbnail for the form), or null if it cannot be read. */
    suspend fun photoBytes(hash: String): ByteArray? = try {
        repo.photoBytes(hash)
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        null
    }

    /** The form's first problem, checked before anything is stored. */
    private fun validate(s: ReportState): UiMessage? = when {
        s.title.isBlank() -> UiMessage.TITLE_REQUIRED
        s.title.trim().codePointCount() > MAX_TITLE -> UiMessage.TITLE_TOO_LONG
        s.description.codePointCount() > MAX_DESCRIPTION -> UiMessage.DESCRIPTION_TOO_LONG
        s.address.codePointCount() > MAX_ADDRESS -> UiMessage.ADDRESS_TOO_LONG
        s.categories.none { it.code == s.category } -> UiMessage.CATEGORY_REQUIRED
        else -> null
    }

    /** Validate and report. On success the form is cleared and [ReportState.reportedCaseId] set. */
    fun submit(): Job = scope.launch {
        val form = _state.value
        if (form.busy) return@launch
        validate(form)?.let { problem ->
            _state.update { it.copy(notice = Notice(problem)) }
            return@launch
        }
        _state.update { it.copy(busy = true, notice = null) }
        try {
            val id = repo.reportCase(
                NewCaseRecord(
                    title = form.title.trim(),
                    description = form.description.trim(),
                    category = form.category,
                    subcategory = form.subcategory,
                    severity = form.severity.code,
                    grid = null,
                    lat = form.location?.lat,
                    lon = form.location?.lon,
                    address = form.address.trim(),
                    photos = form.photos.map { it.hash },
                ),
            )
            _state.update {
                ReportState(
                    categories = it.categories,
                    category = it.category,
                    location = form.location,
                    notice = Notice(UiMessage.REPORT_SAVED),
                    reportedCaseId = id,
                )
            }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            _state.update { it.copy(busy = false, notice = e.toNotice()) }
        }
    }

    private fun String.codePointCount() = codePointCount(0, length)

    private companion object {
        // The engine's limits (core/src/doc/case.rs), checked here to answer at once.
        const val MAX_TITLE = 200
        const val MAX_DESCRIPTION = 5000
        const val MAX_ADDRESS = 200
    }
}
