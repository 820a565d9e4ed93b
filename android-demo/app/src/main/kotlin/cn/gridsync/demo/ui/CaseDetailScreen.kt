package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.LazyRow
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.ArrowBack
import androidx.compose.material3.AssistChip
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.CaseDetailViewModel
import cn.gridsync.demo.logic.GridRepository
import cn.gridsync.demo.logic.TimelineRow

/** One case: its fields, photos and the timeline of the six-step loop. */
@Composable
fun CaseDetailScreen(repo: GridRepository, caseId: String, onBack: () -> Unit) {
    val vm = rememberScopedLogic(caseId) { CaseDetailViewModel(repo, it, caseId) }
    val state by vm.state.collectAsStateWithLifecycle()
    val case = state.case

    Column(Modifier.fillMaxSize()) {
        Row(verticalAlignment = Alignment.CenterVertically) {
            IconButton(onClick = onBack) {
                Icon(Icons.AutoMirrored.Filled.ArrowBack, contentDescription = stringResource(R.string.detail_back))
            }
            Text(case?.title.orEmpty(), style = MaterialTheme.typography.titleLarge, maxLines = 1)
        }
        NoticeText(state.notice, Modifier.padding(horizontal = 16.dp))
        if (case == null) return@Column

        LazyColumn(
            modifier = Modifier.fillMaxSize().padding(horizontal = 16.dp),
            verticalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            item {
                Row(horizontalArrangement = Arrangement.spacedBy(8.dp), verticalAlignment = Alignment.CenterVertically) {
                    Text(case.statusZh, style = MaterialTheme.typography.titleMedium, color = MaterialTheme.colorScheme.primary)
                    if (state.pending) AssistChip(onClick = {}, label = { Text(stringResource(R.string.case_pending)) })
                }
            }
            if (case.description.isNotBlank()) {
                item { Text(case.description) }
            }
            if (case.photos.isNotEmpty()) {
                item { Text(stringResource(R.string.detail_photos), style = MaterialTheme.typography.labelLarge) }
                item {
                    LazyRow(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                        items(case.photos.map { it.hash }) { hash -> PhotoThumb(hash, vm::photoBytes, size = 160.dp) }
                    }
                }
            }
            item { Text(stringResource(R.string.detail_timeline), style = MaterialTheme.typography.labelLarge) }
            items(case.timeline) { step -> TimelineItem(step) }
            if (case.notes.isNotEmpty()) {
                item { Text(stringResource(R.string.detail_notes), style = MaterialTheme.typography.labelLarge) }
                items(case.notes) { note -> Text(note.text) }
            }
        }
    }
}

@Composable
private fun TimelineItem(step: TimelineRow) {
    Column(Modifier.fillMaxWidth()) {
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp), verticalAlignment = Alignment.CenterVertically) {
            Text(step.labelZh, style = MaterialTheme.typography.titleSmall)
            Text(step.roleZh, style = MaterialTheme.typography.bodySmall)
            Text(formatTime(step.atMs), style = MaterialTheme.typography.bodySmall)
        }
        when (step.outcome) {
            "conflict" -> Text(stringResource(R.string.outcome_conflict), color = MaterialTheme.colorScheme.error)
            "refused" -> Text(stringResource(R.string.outcome_refused), color = MaterialTheme.colorScheme.error)
        }
        HorizontalDivider(Modifier.padding(top = 8.dp))
    }
}
