package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.KeyboardArrowLeft
import androidx.compose.material.icons.automirrored.filled.KeyboardArrowRight
import androidx.compose.material3.Card
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
import cn.gridsync.demo.logic.PointsViewModel

/** 我的积分: the month's points, the counts behind them and the leaders' adjustments. */
@Composable
fun PointsScreen(vm: PointsViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
    Column(
        modifier = Modifier.fillMaxSize().verticalScroll(rememberScrollState()).padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Row(Modifier.fillMaxWidth(), verticalAlignment = Alignment.CenterVertically) {
            IconButton(onClick = vm::previousMonth) {
                Icon(Icons.AutoMirrored.Filled.KeyboardArrowLeft, contentDescription = stringResource(R.string.points_previous_month))
            }
            Text(
                stringResource(R.string.points_month, state.month.year, state.month.monthValue),
                style = MaterialTheme.typography.titleMedium,
                modifier = Modifier.weight(1f),
            )
            IconButton(onClick = vm::nextMonth) {
                Icon(Icons.AutoMirrored.Filled.KeyboardArrowRight, contentDescription = stringResource(R.string.points_next_month))
            }
        }
        NoticeText(state.notice)
        if (state.empty) Text(stringResource(R.string.points_empty))
        val totals = state.totals ?: return@Column
        Card(Modifier.fillMaxWidth()) {
            Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
                Text(stringResource(R.string.points_total, totals.points), style = MaterialTheme.typography.titleLarge)
                Text(stringResource(R.string.points_sum, totals.computed, totals.adjusted))
                Text(stringResource(R.string.points_reports, totals.validReports, totals.handledOnTheSpot, totals.majorCases))
                Text(stringResource(R.string.points_invalid, totals.invalidReports))
                Text(stringResource(R.string.points_visits, totals.visits, totals.inspections))
            }
        }
        Text(stringResource(R.string.points_adjustments), style = MaterialTheme.typography.titleMedium)
        if (state.adjustments.isEmpty()) Text(stringResource(R.string.points_no_adjustments))
        state.adjustments.forEach { a ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
                    Text(stringResource(R.string.points_adjustment, a.points), style = MaterialTheme.typography.titleSmall)
                    Text(a.reason)
                    Text(
                        stringResource(R.string.points_adjustment_by, a.byName, formatTime(a.atMs)),
                        style = MaterialTheme.typography.bodySmall,
                        color = MaterialTheme.colorScheme.onSurfaceVariant,
                    )
                }
            }
        }
    }
}
