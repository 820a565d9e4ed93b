package cn.gridsync.demo.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Search
import androidx.compose.material3.AssistChip
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.Icon
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.CaseListViewModel
import cn.gridsync.demo.logic.CaseRow

/** Cases on this phone, newest first, with search; follows changes by itself. */
@Composable
fun CaseListScreen(vm: CaseListViewModel, onOpen: (String) -> Unit) {
    val state by vm.state.collectAsStateWithLifecycle()
    Column(Modifier.fillMaxSize()) {
        OutlinedTextField(
            value = state.query,
            onValueChange = vm::onQueryChange,
            leadingIcon = { Icon(Icons.Filled.Search, contentDescription = null) },
            placeholder = { Text(stringResource(R.string.cases_search)) },
            singleLine = true,
            modifier = Modifier.fillMaxWidth().padding(16.dp),
        )
        NoticeText(state.notice, Modifier.padding(horizontal = 16.dp))
        if (state.loaded && state.rows.isEmpty()) {
            Box(Modifier.fillMaxSize(), contentAlignment = Alignment.Center) {
                Text(stringResource(R.string.cases_empty), color = MaterialTheme.colorScheme.onSurfaceVariant)
            }
        } else {
            LazyColumn(Modifier.fillMaxSize()) {
                items(state.rows, key = { it.id }) { row ->
                    CaseRowItem(row, onClick = { onOpen(row.id) })
                    HorizontalDivider()
                }
            }
        }
    }
}

@Composable
private fun CaseRowItem(row: CaseRow, onClick: () -> Unit) {
    ListItem(
        modifier = Modifier.clickable(onClick = onClick),
        headlineContent = { Text(row.title, maxLines = 2) },
        supportingContent = {
            val photos = if (row.photoCount > 0) " · " + stringResource(R.string.case_photo_count, row.photoCount) else ""
            Text(row.statusZh + photos)
        },
        trailingContent = {
            Row(horizontalArrangement = Arrangement.spacedBy(4.dp)) {
                if (row.hasConflict) AssistChip(onClick = onClick, label = { Text(stringResource(R.string.case_conflict)) })
                if (row.pending) AssistChip(onClick = onClick, label = { Text(stringResource(R.string.case_pending)) })
            }
        },
    )
}
